"""`python -m tui` runs the `netcon` command."""

import sys

from tui.launch import main

sys.exit(main())
