"""``python -m pmm ...`` is the ``pmm`` command."""
import sys

from pmm.cli import main

sys.exit(main())
