"""Numbers from the notebook into the prose: ``glue``, rounded so it reads the same everywhere.

The book's Markdown quotes computed numbers with MyST's ``{glue:text}`` role, never typed
by hand. The number is stored in the notebook's outputs, and nbval compares those outputs
on every machine that runs the tests. A float's full ``repr`` differs in its last digits
from one CPU to another (another BLAS kernel, another SIMD width), so ``glue`` stores each
number at the precision its claim needs: three significant digits unless told otherwise.

``glue`` writes the record that myst-nb reads (a display output whose MIME type starts with
``application/papermill.record/``) through IPython alone. The chapters therefore need no
myst-nb where they run (Colab has none); outside IPython the value is only kept in
:data:`GLUED`.
"""

from __future__ import annotations

import math
import numbers
import re

__all__ = ["GLUED", "glue", "power_of_ten_above", "power_of_ten_below", "round_sig"]

GLUE_PREFIX = "application/papermill.record/"  # what myst-nb's {glue} roles look for
MAX_DIGITS = 6  # more significant digits than this would not survive another CPU

GLUED: dict[str, object] = {}  # every value glued in this process, by name

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def round_sig(x: float, digits: int = 3) -> float:
    """``x`` rounded to ``digits`` significant digits (``round_sig(0.0123456, 2) == 0.012``).

    Non-finite values (``inf``, ``nan``) are returned unchanged.
    """
    if isinstance(digits, bool) or not isinstance(digits, numbers.Integral):
        raise TypeError(f"digits must be an int, got {type(digits).__name__} ({digits!r})")
    if not 1 <= digits <= MAX_DIGITS:
        raise ValueError(f"digits must be in 1..{MAX_DIGITS}, got {digits}")
    x = float(x)
    if not math.isfinite(x) or x == 0.0:
        return x + 0.0  # + 0.0 turns -0.0 into 0.0
    return float(f"{x:.{int(digits)}g}")


def _as_plain(value, digits: int):
    """A Python bool, int, float (rounded) or str for ``value``; a clear error otherwise."""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:  # NumPy / torch 0-d values
        value = value.item()
    if isinstance(value, bool | str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return round_sig(value, digits)
    raise TypeError(f"value must be a number or a string, got {type(value).__name__}: "
                    f"glue stores what the prose quotes, one number at a time")


def glue(name: str, value, *, digits: int = 3) -> None:
    """Store ``value`` under ``name`` for the prose's ``{glue:text}`name:.2f``` roles.

    Args:
        name: a Python identifier that starts with the chapter, e.g. ``"ch04_crossover"``.
        value: a number (Python, NumPy or 0-d torch) or a string. Floats are rounded to
            ``digits`` significant digits; ints, bools and strings are stored as they are.
        digits: significant digits of a float (1..6): as many as the claim needs.

    Returns:
        None, so that a cell ending in ``glue(...)`` shows no stray ``Out[]`` number under it;
        the stored value (the rounded float) is ``GLUED[name]``.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"name must be an identifier such as 'ch01_slope', got {name!r}")
    stored = _as_plain(value, digits)
    GLUED[name] = stored
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # plain Python: nothing to display
        return
    if get_ipython() is not None:
        display({GLUE_PREFIX + "text/plain": repr(stored)}, raw=True,
                metadata={"scrapbook": {"name": name, "mime_prefix": GLUE_PREFIX}})


def power_of_ten_above(x: float) -> float:
    """The smallest power of ten at or above ``|x|``: a bound that reads the same on any CPU.

    Residuals near machine epsilon and errors of ill-conditioned computations differ between
    machines in their leading digit; "below 1e-12" stays true where "2.9e-13" does not.
    """
    return 10.0 ** math.ceil(_log10(x) - 1e-12)  # exact powers of ten map to themselves


def power_of_ten_below(x: float) -> float:
    """The largest power of ten at or below ``|x|``: "the error exceeds 1e5" on any CPU."""
    return 10.0 ** math.floor(_log10(x) + 1e-12)


def _log10(x: float) -> float:
    x = abs(float(x))
    if not math.isfinite(x) or x == 0.0:
        raise ValueError(f"x must be finite and non-zero, got {x!r}")
    return math.log10(x)
