"""Checkers for the book's exercises, one module per chapter (``sseq.checks.ch01``, ...).

Each checker builds hidden cases and hands them, with the book's reference, to
:mod:`sseq.exercises`, which prints a line per case and a verdict. Chapter modules
are imported on first use, so ``sseq.checks.ch01.check_attend`` just works.
"""

import importlib


def __getattr__(name: str):
    if name.startswith("ch") and name[2:].isdigit():
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as err:
            raise AttributeError(f"sseq.checks has no checkers for chapter {name[2:]}") from err
    raise AttributeError(f"module 'sseq.checks' has no attribute {name!r}")
