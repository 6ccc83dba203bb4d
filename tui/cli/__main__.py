"""`python -m tui.cli` runs the `netcon` command."""

import sys

from tui.cli import main

sys.exit(main())
