"""`python -m promptlit ...` runs the `promptlit` command (see `promptlit.cli`)."""

import sys

from promptlit.cli import main

if __name__ == "__main__":
    sys.exit(main())
