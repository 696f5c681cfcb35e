"""`python -m callmask`: the same command as the `callmask` console script."""

import sys

from callmask.cli import main

sys.exit(main())
