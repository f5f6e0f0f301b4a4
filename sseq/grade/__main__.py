"""``python -m sseq.grade SUBMISSIONS... --out grades.csv [--seed N]``: see :mod:`sseq.grade`."""

import sys

from sseq.grade import main

if __name__ == "__main__":
    sys.exit(main())
