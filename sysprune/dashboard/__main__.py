"""``python -m sysprune.dashboard``: the ``sysprune dashboard`` subcommand on its own."""

import sys

from sysprune.dashboard._command import main

sys.exit(main())
