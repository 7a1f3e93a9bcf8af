"""``python -m tiletune``: the ``tiletune`` command."""
import sys

from tiletune.cli import main

if __name__ == "__main__":
    sys.exit(main())
