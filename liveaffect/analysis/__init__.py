"""Batch analysis of video archives: per-video results and reports, locally or on Ray.

``python -m liveaffect analyze INPUT... --out DIR`` (see ``liveaffect.commands.analyze``)
is built from these parts:

* :mod:`.inputs` finds the videos (files, folders, patterns) and names their folders;
* :mod:`.runner` analyses one video with the live app's stages, batched and threaded;
* :mod:`.summary` and :mod:`.report` turn its ``faces.csv`` into numbers and a picture;
* :mod:`.job` is the unit of work (skip, analyse, publish), :mod:`.storage` the output
  folder (local or ``gs://``, temporary names then rename);
* :mod:`.archive` runs many videos in one process, :mod:`.ray_runner` on a Ray cluster.
"""
