"""`python -m pixcrawler_gui ROLE ...`: the same entry point as the `pixcrawler` command."""

import sys

from pixcrawler_gui.cli.main import main

sys.exit(main())
