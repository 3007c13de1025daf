"""``python -m ww_core`` runs the ``ww`` command."""

import sys

from ww_core.cli import main

sys.exit(main())
