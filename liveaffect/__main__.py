import sys

from liveaffect.cli import main

sys.exit(main())
