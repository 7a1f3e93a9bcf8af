"""``python -m tiletune.cli``."""
import sys

from tiletune.cli import main

sys.exit(main())
