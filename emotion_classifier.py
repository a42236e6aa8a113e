"""Live facial affect analysis: ``python emotion_classifier.py [SOURCE] [options]``.

No SOURCE opens webcam 0; an integer opens that camera; a path plays a video file;
an rtsp:// or http(s):// URL reads a stream. Press q or Esc in the window to quit.
Run ``python emotion_classifier.py --help`` for every option.
"""

import sys

from liveaffect.cli import main

if __name__ == "__main__":
    sys.exit(main(["live", *sys.argv[1:]], live_prog="python emotion_classifier.py"))
