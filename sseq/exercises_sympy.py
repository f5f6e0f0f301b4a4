"""Deciding whether a learner's derived expression equals the expected one.

A learner builds an answer their own way: with symbols of their own making (no
assumptions, or other ones), with floats (``1.0 - lam**2.0``), as ``exp((T - t)*log(w))``, or
as the ``Piecewise`` that ``sympy.summation`` returns. :func:`equivalent` therefore

1. rebuilds the answer on the exercise's own symbols, matched by name, and turns floats into
   the decimals they spell (``0.5`` → ``1/2``);
2. asks sympy whether the difference simplifies to zero;
3. otherwise compares the two numerically, to 30 digits, at random points of the exercise's
   domain (a fixed seed, so the feedback is the same on every run).

The verdict names a point where the two differ and the learner's value there, never the
expected expression or the difference, which would give the answer away.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import sympy as sp

__all__ = ["Domain", "equivalent", "to_sympy"]

N_POINTS = 12
DIGITS = 30
RTOL = 1e-12

# A symbol's domain: (low, high) for reals, range(...) for integers.
Domain = Mapping[sp.Symbol, "tuple[float, float] | range"]


def to_sympy(x: Any, like: Any = None):
    """``x`` as a sympy expression or matrix; a list or tuple becomes a matrix like ``like``.

    Strings are refused: ``sympify`` would run them as code.
    """
    if isinstance(x, str):
        raise TypeError("a string; build the expression from the symbols instead")
    if isinstance(x, (list, tuple)) and isinstance(like, sp.MatrixBase):
        rows = like.shape[0]
        flat = [to_sympy(v) for v in x]
        if rows == 1:
            return sp.Matrix([flat])
        return sp.Matrix(flat) if all(not isinstance(v, sp.MatrixBase) for v in flat) \
            else sp.Matrix(x)
    if hasattr(x, "item") and getattr(x, "ndim", None) == 0:
        x = x.item()
    return sp.sympify(x, strict=True)


def _rebuild(expr, symbols: dict[str, sp.Symbol]):
    """Put the exercise's symbols in place of the learner's (by name); floats to decimals."""
    swap = {s: symbols[s.name] for s in expr.free_symbols
            if isinstance(s, sp.Symbol) and s.name in symbols}
    expr = expr.xreplace(swap)
    floats = {f: sp.Rational(repr(float(f))) for f in expr.atoms(sp.Float)}
    return expr.xreplace(floats) if floats else expr


def _sample(symbol: sp.Symbol, domain: Domain, rng: random.Random):
    if symbol in domain:
        where = domain[symbol]
        if isinstance(where, range):
            return sp.Integer(rng.choice(where))
        low, high = where
        return sp.Rational(repr(round(rng.uniform(low, high), 3)))
    if symbol.is_integer:
        return sp.Integer(rng.randint(1, 6))
    low = 0.1 if symbol.is_positive or symbol.is_nonnegative else -2.0
    return sp.Rational(repr(round(rng.uniform(low, 2.0), 3)))


def _value(expr, point) -> list[complex] | None:
    entries = list(expr) if isinstance(expr, sp.MatrixBase) else [expr]
    values = []
    for entry in entries:
        try:
            v = sp.N(entry.xreplace(point) if hasattr(entry, "xreplace") else entry, DIGITS)
            if not v.is_number or v.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
                return None
            values.append(complex(v))
        except (TypeError, ValueError, AttributeError, ArithmeticError):
            return None
    return values


def _equal_at(got, expected, point) -> bool | None:
    """Whether the two agree at ``point``; None when the expected one is not finite there."""
    e = _value(expected, point)
    if e is None:
        return None
    g = _value(got, point)
    if g is None:
        return False
    return all(abs(a - b) <= RTOL * max(1.0, abs(b)) for a, b in zip(g, e, strict=True))


def _points(symbols, domain: Domain, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    ordered = sorted(symbols, key=lambda s: s.name)
    return [{s: _sample(s, domain, rng) for s in ordered} for _ in range(4 * N_POINTS)]


def _show(point: dict, got) -> str:
    where = ", ".join(f"{s} = {v}" if v.is_Integer else f"{s} = {float(v):g}"
                      for s, v in point.items())
    values = _value(got, point)
    if values is None:
        return f"at {where} yours is not a finite number" if where else "yours is not finite"
    text = ", ".join(f"{v.real:.6g}" if abs(v.imag) < 1e-12 * max(1, abs(v)) else f"{v:.6g}"
                     for v in values)
    return f"at {where} yours is {text}" if where else f"yours is {text}"


def equivalent(got, expected, *, symbols: dict[str, sp.Symbol], domain: Domain,
               simplify: bool = True) -> tuple[bool, str]:
    """Whether ``got`` equals ``expected`` on the domain; else a sentence saying where not.

    Args:
        got: the learner's expression (or matrix), already a sympy object.
        expected: the right answer, built on the exercise's symbols.
        symbols: the exercise's symbols by name.
        domain: where the symbols live (others: 1..6 for integers, (0.1, 2) for positive).
        simplify: try ``sympy.simplify`` before the numeric comparison.

    Returns:
        ``(True, "")`` or ``(False, why)``.
    """
    got = _rebuild(got, symbols)
    if isinstance(expected, sp.MatrixBase) != isinstance(got, sp.MatrixBase):
        kind = "a matrix" if isinstance(expected, sp.MatrixBase) else "a single expression"
        other = "a matrix" if isinstance(got, sp.MatrixBase) else "a single expression"
        return False, f"expected {kind}, got {other}."
    if isinstance(expected, sp.MatrixBase) and got.shape != expected.shape:
        return False, (f"shape differs: expected {expected.shape[0]}×{expected.shape[1]}, "
                       f"got {got.shape[0]}×{got.shape[1]}.")
    foreign = sorted(s.name for s in got.free_symbols - expected.free_symbols
                     if isinstance(s, sp.Symbol))
    if simplify:
        difference = sp.simplify(got - expected)
        if (difference.is_zero_matrix if isinstance(difference, sp.MatrixBase)
                else difference == 0):
            return True, ""
    tried = 0
    for point in _points(expected.free_symbols | got.free_symbols, domain):
        same = _equal_at(got, expected, point)
        if same is None:
            continue
        if not same:
            if foreign:
                return False, (f"contains {', '.join(foreign)}, which the answer does not "
                               "depend on; eliminate it.")
            return False, f"differs from the expected result ({_show(point, got)})."
        tried += 1
        if tried == N_POINTS or not point:
            return True, ""
    return False, "could not be evaluated at points of the exercise's domain."
