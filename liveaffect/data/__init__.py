"""Dataset readers (pure Python), sampling, splits and the tf.data pipeline."""
