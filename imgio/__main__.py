"""``python -m imgio``: the same as the ``imgio`` command."""
import sys

from .cli import main

sys.exit(main())
