"""Comparing a learner's result with the reference, in words a learner can act on.

:func:`compare` returns ``""`` when ``got`` matches ``expected`` and otherwise one sentence
saying how it differs: type, then shape, then dtype, then values. Values are close when
``|got - expected| <= atol + rtol * |expected|`` entry by entry (NaN matches NaN). Numbers are
printed with as many digits as it takes for the two to read differently, and with the
relative error, so that a float32 slip never reads "expected 0.699417, got 0.699417".

With ``reveal=False`` (predictions) the sentence says whether the value is too high or too
low, never what it should be.
"""

from __future__ import annotations

import math
from fractions import Fraction
from numbers import Number
from typing import Any

import numpy as np
import torch

__all__ = ["as_number", "compare", "describe", "format_pair"]


def describe(x: Any) -> str:
    """A short description of a value's type (and shape and dtype for tensors and arrays)."""
    if isinstance(x, torch.Tensor):
        kind = "an nn.Parameter" if isinstance(x, torch.nn.Parameter) else "a tensor"
        return f"{kind} of shape {tuple(x.shape)} and dtype {x.dtype}"
    if isinstance(x, np.ndarray):
        return f"an array of shape {x.shape} and dtype {x.dtype}"
    if x is None or x is Ellipsis:
        return repr(x)
    if isinstance(x, int) and not isinstance(x, bool) and abs(x) >= 10**30:
        return f"an int of about {int(x.bit_length() * 0.30103) + 1} digits"
    if isinstance(x, (bool, int, float, complex, str, np.generic)):
        return f"{type(x).__name__} {x!r}"
    return type(x).__name__


def as_number(x: Any):
    """``x`` as a Python number if it is one (0-d tensors and arrays included), else None."""
    if isinstance(x, (torch.Tensor, np.ndarray)):
        if x.ndim != 0 or x.dtype in (torch.bool, np.bool_):
            return None
        x = x.detach().resolve_conj().resolve_neg().cpu() if isinstance(x, torch.Tensor) else x
        return x.item()
    if isinstance(x, (bool, np.bool_)):
        return None
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, Number) and not isinstance(x, bool):
        try:
            return complex(x) if isinstance(x, complex) else (x if isinstance(x, int) else float(x))
        except (OverflowError, TypeError, ValueError):
            return None
    return None


def _to_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().resolve_conj().resolve_neg().cpu()
        if x.dtype == torch.bfloat16:
            x = x.float()
        return x.numpy()
    return np.asarray(x)


def _digits_apart(e: float, g: float) -> int:
    """The fewest significant digits (at least 6) that print e and g differently; 6 when they
    are equal (17 digits tell any two different floats apart)."""
    for digits in range(6, 18):
        if f"{e:.{digits}g}" != f"{g:.{digits}g}":
            return digits
    return 6


def format_pair(expected, got) -> tuple[str, str]:
    """Format two numbers (real or complex) with enough digits to tell them apart."""
    if isinstance(expected, complex) or isinstance(got, complex):
        e, g = complex(expected), complex(got)
        n = max(_digits_apart(e.real, g.real), _digits_apart(e.imag, g.imag))
        return (f"{e.real:.{n}g}{e.imag:+.{n}g}j", f"{g.real:.{n}g}{g.imag:+.{n}g}j")
    if isinstance(expected, int) and isinstance(got, int):
        return str(expected), str(got)
    n = _digits_apart(float(expected), float(got))
    return f"{float(expected):.{n}g}", f"{float(got):.{n}g}"


def _relative(e, g) -> float:
    try:
        scale = abs(e)
        return float(abs(g - e) / scale) if scale else float(abs(g - e))
    except (OverflowError, ZeroDivisionError):
        return float("inf")


def _finite(x) -> bool:
    return isinstance(x, int) or math.isfinite(x)


def _close_scalar(g, e, rtol: float, atol: float) -> bool:
    """|g - e| <= atol + rtol |e|, exactly for ints of any size; NaN matches NaN."""
    if isinstance(g, complex) or isinstance(e, complex):
        g, e = complex(g), complex(e)
        if g != g or e != e:
            return (g != g) and (e != e)
        return abs(g - e) <= atol + rtol * abs(e) or g == e
    if g != g or e != e:
        return (g != g) and (e != e)
    if g == e:
        return True
    if not (_finite(g) and _finite(e)):
        return False
    try:
        return abs(Fraction(g) - Fraction(e)) <= Fraction(atol) + Fraction(rtol) * abs(Fraction(e))
    except (OverflowError, ValueError):
        return False


def _direction(g, e) -> str:
    """'too high' / 'too low' with a rough size, without the expected value."""
    if isinstance(g, complex) or isinstance(e, complex):
        return "is not the measured value"
    try:
        if e and g and (g > 0) != (e > 0):
            return "has the wrong sign"
        ratio = abs(Fraction(g) / Fraction(e)) if e else None
    except (OverflowError, ValueError, ZeroDivisionError):
        ratio = None
    word = "too high" if g > e else "too low"
    if ratio is None:
        return f"is {word}"
    ratio = max(ratio, 1 / ratio) if ratio else float("inf")
    size = ("" if ratio < 2 else " by a factor of 2 or more" if ratio < 10
            else " by a factor of 10 or more")
    return f"is {word}{size}"


def _tolerance(rtol: float, atol: float) -> str:
    parts = ([f"rtol {rtol:g}"] if rtol else []) + ([f"atol {atol:g}"] if atol else [])
    return "exact" if not parts else ", ".join(parts)


def _compare_numbers(got, expected, rtol, atol, reveal) -> str:
    g = as_number(got)
    if g is None:
        return f"expected a number, got {describe(got)}."
    e = as_number(expected)
    if _close_scalar(g, e, rtol, atol):
        return ""
    if not reveal:
        return f"your value {_direction(g, e)} (tolerance: {_tolerance(rtol, atol)})."
    es, gs = format_pair(e, g)
    return (f"expected {es}, got {gs} (relative error {_relative(e, g):.1e}; "
            f"tolerance {_tolerance(rtol, atol)}).")


def _fits_float32(x: np.ndarray) -> np.ndarray:
    parts = (x.real, x.imag) if np.iscomplexobj(x) else (x,)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.logical_and.reduce([p.astype(np.float32).astype(p.dtype) == p for p in parts])


def _computed_in_float32(g: np.ndarray, e: np.ndarray) -> bool:
    """Every value of ``g`` is a float32 number while the float64 reference's are not.

    The reference's values must also lie well off the float32 grid (further than float64
    round-off), so that an exact answer (0.25 where the reference says 0.2500000000000001)
    is not taken for a float32 one; and close to the answer (median relative error under
    1 %), so that another mistake whose values happen to be float32 numbers (all zeros, say)
    gets its own hint rather than this one.
    """
    if e.dtype not in (np.float64, np.complex128) or e.size == 0:
        return False
    finite = np.isfinite(e) & np.isfinite(g)
    off_grid = ~_fits_float32(e) & finite
    if int(off_grid.sum()) < min(4, e.size) or not bool(_fits_float32(g[finite]).all()):
        return False
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(g[off_grid] - e[off_grid]) / np.maximum(np.abs(e[off_grid]), 1e-300)
    return 1e-12 < float(np.median(rel)) < 1e-2


def _compare_arrays(got, expected, rtol, atol, reveal) -> str:
    is_tensor = isinstance(expected, torch.Tensor)
    if not isinstance(got, torch.Tensor if is_tensor else np.ndarray):
        return f"expected {describe(expected)}, got {describe(got)}."
    if tuple(got.shape) != tuple(expected.shape):
        return f"shape differs: expected {tuple(expected.shape)}, got {tuple(got.shape)}."
    if got.dtype != expected.dtype:
        return f"dtype differs: expected {expected.dtype}, got {got.dtype}."
    g, e = _to_numpy(got), _to_numpy(expected)
    if e.dtype.kind in "biu" or e.dtype == bool:
        bad = g != e
    else:
        with np.errstate(invalid="ignore", over="ignore"):
            bad = ~((np.abs(g - e) <= atol + rtol * np.abs(e)) | (g == e)
                    | (np.isnan(g) & np.isnan(e)))
    if not bad.any():
        if _computed_in_float32(g, e):
            return ("every value you return is a float32 number: the result was computed in "
                    "float32 and converted. Keep the inputs' float64 throughout.")
        return ""
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    if not np.isfinite(g[idx]) and np.isfinite(e[idx]):
        n_bad = int((~np.isfinite(g) & np.isfinite(e)).sum())
        what = "NaN" if np.isnan(g[idx]) else "infinite"
        return (f"{n_bad} of {bad.size} entries are {what} where a finite value was expected; "
                f"the first at index {idx}.")
    why = f"values differ at {int(bad.sum())} of {bad.size} entries"
    if not reveal:
        return f"{why}; the first at index {idx} {_direction(g[idx].item(), e[idx].item())}."
    es, gs = format_pair(e[idx].item(), g[idx].item())
    rel = _relative(e[idx].item(), g[idx].item())
    suffix = (" (every value you return is a float32 number: was it computed in float32?)"
              if _computed_in_float32(g, e) else "")
    return (f"{why}; first at index {idx}: expected {es}, got {gs} (relative error {rel:.1e}; "
            f"tolerance {_tolerance(rtol, atol)}).{suffix}")


def compare(got: Any, expected: Any, *, rtol: float, atol: float, reveal: bool = True) -> str:
    """Return ``''`` when ``got`` matches ``expected``, else a sentence saying how not.

    Tensors and arrays must agree in type (an ``nn.Parameter`` is a tensor), shape and dtype,
    then in value; a float64 result whose every entry is a float32 number (computed in float32
    and converted) does not pass. Tuples and lists compare item by item; numbers accept 0-d
    tensors and arrays and ints of any size; anything else compares with ``==``.

    Args:
        got: the learner's value.
        expected: the reference's value.
        rtol, atol: the tolerance, ``|got - expected| <= atol + rtol * |expected|``.
        reveal: whether the sentence may show the expected value (not for predictions).
    """
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return (f"expected a {type(expected).__name__} of {len(expected)} items, "
                    f"got {describe(got)}"
                    + (f" of {len(got)} items." if isinstance(got, (tuple, list)) else "."))
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            why = compare(g, e, rtol=rtol, atol=atol, reveal=reveal)
            if why:
                return f"item {i}: {why}"
        return ""
    if isinstance(expected, (torch.Tensor, np.ndarray)):
        return _compare_arrays(got, expected, rtol, atol, reveal)
    if isinstance(expected, (Number, np.number)) and not isinstance(expected, (bool, np.bool_)):
        return _compare_numbers(got, expected, rtol, atol, reveal)
    if isinstance(expected, (bool, np.bool_)):
        flag = got.item() if isinstance(got, (torch.Tensor, np.ndarray)) and got.ndim == 0 else got
        same = isinstance(flag, (bool, np.bool_)) and bool(flag) == bool(expected)
    else:
        try:
            same = bool(got == expected)
        except Exception:
            same = False
    if same:
        return ""
    return (f"expected {expected!r}, got {describe(got)}." if reveal
            else f"got {describe(got)}, which is not the answer.")
