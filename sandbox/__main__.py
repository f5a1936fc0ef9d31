"""`python -m sandbox [--port P] [--seed S] [--scenario NAME] ...` (same as `pmm sandbox`)."""

import sys

from .cli import main

sys.exit(main())
