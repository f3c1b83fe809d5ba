"""``python -m labrun`` is the ``labrun`` tool (used where the console script may not be on PATH)."""

import sys

from labrun.cli.tool import main

if __name__ == "__main__":
    sys.exit(main())
