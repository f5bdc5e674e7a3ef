"""``python -m hooknb`` is the ``hooknb`` command."""

import sys

from .cli import main

sys.exit(main())
