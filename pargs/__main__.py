"""``python -m pargs`` is the ``pargs`` command."""

import sys

from pargs.cli import main

sys.exit(main())
