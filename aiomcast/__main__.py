"""Entry point for ``python -m aiomcast``."""

import sys

from .cli import main

sys.exit(main())
