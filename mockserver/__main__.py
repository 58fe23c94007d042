"""`python -m mockserver` runs the command line."""

import sys

from mockserver.cli import main

sys.exit(main())
