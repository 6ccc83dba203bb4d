"""`python -m core.cli`: the headless command line (no console)."""

import sys

from core.cli import main

sys.exit(main())
