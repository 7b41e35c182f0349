"""`python -m app` is `dalal`: used by tests and when the console script is not on PATH."""

import sys

from app.cli import main

sys.exit(main())
