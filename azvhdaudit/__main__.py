"""``python -m azvhdaudit``: the command line (see :mod:`azvhdaudit.cli`)."""

from __future__ import annotations

import sys

from azvhdaudit.cli import main

if __name__ == "__main__":
    sys.exit(main())
