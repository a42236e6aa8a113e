"""liveaffect: real-time facial affect analysis (expression, valence/arousal, action units)."""

__version__ = "0.1.0"
