"""`python -m core.cli`: the headless command line (no console)."""

import sys

from core.cli import main
from core.cli.collector import finish

status = main()
finish()  # the process ends here: see core.cli.collector
sys.exit(status)
