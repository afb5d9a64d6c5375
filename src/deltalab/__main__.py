"""``python -m deltalab …`` runs the ``deltalab`` command (as ``python -m pip`` does pip)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
