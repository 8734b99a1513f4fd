"""``python -m scenarios.api [serve] --port P`` (as ``twin serve``) or ``python -m scenarios.api keys ...``."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
