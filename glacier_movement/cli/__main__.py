"""``python -m glacier_movement.cli``: the same command line as ``glacier-movement``."""

import sys

from . import main

sys.exit(main())
