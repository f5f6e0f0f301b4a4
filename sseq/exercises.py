"""Exercise checkers: run a learner's answer on hidden cases and say what differed.

An exercise cell in the book ends with a call such as
``sseq.checks.ch01.check_running_mean(running_mean)``. The chapter's checker
builds hidden cases and hands them, with the reference, to :func:`check_function`
here, which

* runs the learner's function on every case, under a time limit;
* compares its result with the reference's: type, shape, dtype, then values;
* prints one friendly line per case (``✓``, or ``✗`` with what differed and a
  hint), then a one-line verdict;
* never lets a learner's exception, wrong type or endless loop crash the notebook.

Predict-then-measure exercises use :func:`check_value`, derivations use
:func:`check_expression`. Every checker returns a :class:`Report`, which is
truthy when everything passed, so instructors can grade with ``bool(report)``.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = ["Case", "Report", "check_expression", "check_function", "check_value"]

PASS, FAIL = "✓", "✗"


@dataclass(frozen=True)
class Case:
    """One hidden test case: the arguments to call both functions with."""

    name: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    hint: str = ""


@dataclass
class Report:
    """What a checker found: one line per case and a verdict."""

    title: str
    lines: list[str] = field(default_factory=list)
    n_passed: int = 0
    n_cases: int = 0
    _shown: bool = field(default=False, repr=False)

    @property
    def passed(self) -> bool:
        return self.n_cases > 0 and self.n_passed == self.n_cases

    def __bool__(self) -> bool:
        return self.passed

    def verdict(self) -> str:
        if self.passed:
            if self.n_cases == 1:
                return f"{self.title}: correct. Well done!"
            return f"{self.title}: all {self.n_cases} checks pass. Well done!"
        return f"{self.title}: {self.n_passed} of {self.n_cases} checks pass. Keep going."

    def __str__(self) -> str:
        return "\n".join([*self.lines, self.verdict()])

    __repr__ = __str__

    def show(self) -> Report:
        """Print the report (once: a notebook does not echo it again)."""
        print(self)
        self._shown = True
        return self

    def _ipython_display_(self) -> None:
        if not self._shown:
            self.show()

    def _record(self, ok: bool, name: str, detail: str = "", hint: str = "") -> None:
        self.n_cases += 1
        self.n_passed += ok
        line = f"{PASS if ok else FAIL} {name}"
        if not ok:
            line += f": {detail}" + (f" Hint: {hint}" if hint else "")
        self.lines.append(line)


class _TimeLimit(Exception):
    pass


@contextmanager
def _time_limit(seconds: float):
    """Raise _TimeLimit in the main thread after ``seconds`` (POSIX timers)."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable or seconds is None:
        yield
        return

    def on_alarm(signum, frame):
        raise _TimeLimit

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _describe(x: Any) -> str:
    if isinstance(x, torch.Tensor):
        return f"a tensor of shape {tuple(x.shape)} and dtype {x.dtype}"
    if isinstance(x, np.ndarray):
        return f"an array of shape {x.shape} and dtype {x.dtype}"
    return f"{type(x).__name__} {x!r}" if np.isscalar(x) else type(x).__name__


def compare(got: Any, expected: Any, *, rtol: float, atol: float) -> str:
    """Return '' when ``got`` matches ``expected``, else a sentence saying how not.

    Tensors and arrays must agree in type, shape and dtype, then in value up to
    ``|got - expected| <= atol + rtol * |expected|``. Tuples and lists compare
    element by element; other values with ``==`` (floats within tolerance).
    """
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return (f"expected a {type(expected).__name__} of {len(expected)} items, "
                    f"got {_describe(got)}.")
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            why = compare(g, e, rtol=rtol, atol=atol)
            if why:
                return f"item {i}: {why}"
        return ""
    if isinstance(expected, (torch.Tensor, np.ndarray)):
        if type(got) is not type(expected):
            return f"expected {_describe(expected)}, got {_describe(got)}."
        if tuple(got.shape) != tuple(expected.shape):
            return f"shape differs: expected {tuple(expected.shape)}, got {tuple(got.shape)}."
        if got.dtype != expected.dtype:
            return f"dtype differs: expected {expected.dtype}, got {got.dtype}."
        g = np.asarray(got.detach().cpu() if isinstance(got, torch.Tensor) else got)
        e = np.asarray(expected.detach().cpu() if isinstance(expected, torch.Tensor) else expected)
        if g.dtype == bool or e.dtype == bool:
            bad = g != e
        else:
            bad = ~np.isclose(g, e, rtol=rtol, atol=atol, equal_nan=True)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            return (f"values differ at {int(bad.sum())} of {bad.size} entries; first at index "
                    f"{idx}: expected {e[idx]:.6g}, got {g[idx]:.6g}.")
        return ""
    number = (float, int, np.floating, np.integer)
    if isinstance(expected, number) and not isinstance(expected, bool):
        if not isinstance(got, number) or isinstance(got, bool):
            return f"expected a number, got {_describe(got)}."
        if not np.isclose(float(got), float(expected), rtol=rtol, atol=atol):
            return f"expected {float(expected):.6g}, got {float(got):.6g}."
        return ""
    return "" if got == expected else f"expected {expected!r}, got {got!r}."


def check_function(learner_fn: Callable, reference_fn: Callable, cases: Sequence[Case], *,
                   title: str, rtol: float = 1e-5, atol: float = 1e-6,
                   time_limit: float = 10.0, verbose: bool = True) -> Report:
    """Run ``learner_fn`` and ``reference_fn`` on each case and report per case.

    Args:
        learner_fn: the learner's function.
        reference_fn: the book's implementation, the oracle.
        cases: hidden cases; each is called as ``fn(*case.args, **case.kwargs)``.
        title: the exercise's name, used in the verdict.
        rtol, atol: tolerances for numeric comparison.
        time_limit: seconds per case before the learner's call is stopped.
        verbose: print the report (the notebook's view); else only return it.

    Returns:
        A :class:`Report`; ``bool(report)`` is True when every case passed.
    """
    if not callable(learner_fn):
        raise TypeError(f"learner_fn must be a function, got {_describe(learner_fn)}")
    report = Report(title)
    for case in cases:
        expected = reference_fn(*case.args, **case.kwargs)
        try:
            with _time_limit(time_limit):
                got = learner_fn(*case.args, **case.kwargs)
        except _TimeLimit:
            report._record(False, case.name, f"still running after {time_limit:g} s, so it was "
                           "stopped (an endless loop?).", case.hint)
            continue
        except NotImplementedError:  # an untouched stub: no hints yet, just the cases
            report._record(False, case.name, "not implemented yet.")
            continue
        except Exception as err:  # a learner's bug must not crash the notebook
            report._record(False, case.name, f"raised {type(err).__name__}: {err}", case.hint)
            continue
        why = compare(got, expected, rtol=rtol, atol=atol)
        report._record(not why, case.name, why, case.hint)
    return report.show() if verbose else report


def check_value(name: str, got: Any, expected: Any, *, rtol: float = 0.1, atol: float = 0.0,
                title: str, hint: str = "", verbose: bool = True) -> Report:
    """Check one value (a prediction, a measured number) against the expected one."""
    report = Report(title)
    if got is ... or got is None:
        report._record(False, name, "no answer yet: replace the ... with your value.")
    else:
        why = compare(got, expected, rtol=rtol, atol=atol)
        report._record(not why, name, why, hint)
    return report.show() if verbose else report


def check_expression(name: str, got: Any, expected: Any, *, title: str, hint: str = "",
                     verbose: bool = True) -> Report:
    """Check a derived sympy expression (or matrix) equals the expected one symbolically."""
    import sympy as sp

    report = Report(title)
    if got is ... or got is None:
        report._record(False, name, "no answer yet: replace the ... with your expression.")
    else:
        try:
            diff = sp.simplify(sp.sympify(got) - sp.sympify(expected))
            zero = diff.is_zero_matrix if isinstance(diff, sp.MatrixBase) else diff == 0
            why = "" if zero else f"differs from the expected result by {diff}."
        except (sp.SympifyError, TypeError, ValueError, sp.ShapeError) as err:
            why = f"could not be compared ({type(err).__name__}: {err})."
        report._record(not why, name, why, hint)
    return report.show() if verbose else report
