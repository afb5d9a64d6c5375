"""``python -m deltalab …`` runs the ``deltalab`` command (as ``python -m pip`` does pip)."""
import sys

from .cli import main

sys.exit(main())
