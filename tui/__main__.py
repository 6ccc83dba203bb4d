"""`python -m tui` runs the `netcon` command."""

import sys

from tui.cli import main

sys.exit(main())
