"""Exercise checkers: run a learner's answer on hidden cases and say what differed.

An exercise cell in the book ends with a call such as
``sseq.checks.ch01.check_attend(my_attend)``. The chapter's checker builds hidden cases
and hands them, with the reference, to :func:`check_function` here, which

* runs the learner's function on every case, on copies of the inputs, under a time limit
  (one endless loop stops the whole exercise at once);
* compares its result with the reference's: type, shape, dtype, then values;
* prints one friendly line per case (``✓``, or ``✗`` with what differed and a hint; a
  known wrong variant is named), then a one-line verdict;
* never lets a learner's exception, wrong type or endless loop crash the notebook, and is
  not fooled by a function that calls the book's own implementation, changes its inputs,
  or computes a float64 case in float32.

Predict-then-measure exercises use :func:`check_value` (which never prints the expected
value), derivations :func:`check_expression` (symbolic, with a numeric fallback). Every
checker returns a :class:`Report`; what ``bool(report)`` guarantees, and what it does not
against a determined learner, is stated in the book's page for instructors.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sseq import exercises_compare as _cmp
from sseq import exercises_guard as _guard
from sseq.exercises_cases import Case, Mistake, active_seed, case_generator, grading_seed
from sseq.exercises_compare import compare

__all__ = ["Case", "Mistake", "Report", "active_seed", "case_generator", "check_expression",
           "check_function", "check_value", "compare", "grading_seed"]

PASS, FAIL = "✓", "✗"
NOT_IMPLEMENTED = "not implemented yet."
NO_ANSWER = "no answer yet: replace the ... with your value."
UNANSWERED = (NOT_IMPLEMENTED, "no answer yet", "not measured yet")


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

    @property
    def unanswered(self) -> bool:
        """True when no case has an answer yet (an untouched stub)."""
        return self.n_cases > 0 and self.n_passed == 0 and all(
            any(f": {marker}" in line for marker in UNANSWERED) for line in self.lines)

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

    def extend(self, other: Report) -> Report:
        """Add another report's cases to this one (an exercise checked in parts)."""
        self.lines += other.lines
        self.n_passed += other.n_passed
        self.n_cases += other.n_cases
        return self

    def _record(self, ok: bool, name: str, detail: str = "", hint: str = "") -> None:
        self.n_cases += 1
        self.n_passed += ok
        line = f"{PASS if ok else FAIL} {name}"
        if not ok:
            line += f": {detail}" + (f" Hint: {hint}" if hint else "")
        self.lines.append(line)


# --- the three kinds of check -------------------------------------------------------------------


def _arg_names(fn: Callable) -> tuple[str, ...]:
    try:
        return tuple(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return ()


def _run(learner_fn, case: Case, time_limit, forbidden, names) -> _guard.Outcome:
    remote = getattr(learner_fn, "_sseq_run_case", None)  # the grader's: runs in its kernel
    if remote is not None:
        return remote(case.args, case.kwargs, time_limit=time_limit, max_lines=case.max_lines,
                      forbidden=[_guard.qualified_name(f) for f in forbidden], arg_names=names)
    return _guard.run_learner(learner_fn, case.args, case.kwargs, time_limit_s=time_limit,
                              forbidden=forbidden, max_lines=case.max_lines, arg_names=names)


def _recognise(got, case: Case, mistakes: Sequence[Mistake], rtol, atol) -> str:
    for mistake in mistakes:
        try:
            wrong = mistake.answer(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
            if not _cmp.compare(got, wrong, rtol=rtol, atol=atol):
                return mistake.text()
        except Exception:  # a variant that does not apply to this case
            continue
    return ""


def _judge(outcome: _guard.Outcome, reference_fn, case: Case, rtol, atol,
           mistakes) -> tuple[str, str]:
    """(why it failed, hint) for one case; ('', '') when it passed."""
    if outcome.kind == "unanswered":
        return NOT_IMPLEMENTED, ""
    if outcome.reference:
        return (f"calls {outcome.reference}, the book's own implementation; write your own.",
                "")
    if outcome.kind == "looped":
        return (f"ran more than {case.max_lines} lines of your Python on this case: the "
                "exercise asks for whole-tensor operations, without a Python loop.", case.hint)
    if outcome.kind == "raised":
        return f"raised {outcome.error}", case.hint
    if outcome.mutated:
        return (f"changed its input {outcome.mutated} in place; leave the inputs as they were "
                "and return a new value.", case.hint)
    expected = reference_fn(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
    try:
        why = _cmp.compare(outcome.value, expected, rtol=rtol, atol=atol)
    except Exception as err:  # an odd object that even comparing trips over
        why = f"could not be compared ({type(err).__name__}: {err})."
    if not why:
        return "", ""
    if "computed in float32" in why:  # the case's hint is about another mistake
        return why, ""
    return why, _recognise(outcome.value, case, mistakes, rtol, atol) or case.hint


def check_function(learner_fn: Callable, reference_fn: Callable, cases: Sequence[Case], *,
                   title: str, rtol: float = 1e-5, atol: float = 1e-6,
                   time_limit: float = 10.0, verbose: bool = True,
                   forbid: Sequence[Callable] = (), mistakes: Sequence[Mistake] = ()) -> Report:
    """Run ``learner_fn`` and ``reference_fn`` on each case and report per case.

    Args:
        learner_fn: the learner's function.
        reference_fn: the book's implementation, the oracle.
        cases: hidden cases; each is called as ``fn(*case.args, **case.kwargs)``.
        title: the exercise's name, used in the verdict.
        rtol, atol: tolerances for numeric comparison.
        time_limit: seconds per case before the learner's call is stopped; the first case
            stopped stops the exercise.
        verbose: print the report (the notebook's view); else only return it.
        forbid: more book functions the learner must not call (``reference_fn`` always is).
        mistakes: common wrong variants, named when a failing result matches one.

    Returns:
        A :class:`Report`; ``bool(report)`` is True when every case passed.
    """
    if not callable(learner_fn):
        raise TypeError(f"learner_fn must be a function, got {_cmp.describe(learner_fn)}")
    report = Report(title)
    forbidden, names, stopped = (reference_fn, *forbid), _arg_names(reference_fn), ""
    for case in cases:
        if stopped:
            report._record(False, case.name, stopped)
            continue
        outcome = _run(learner_fn, case, time_limit, forbidden, names)
        if outcome.kind == "timeout":
            limit = outcome.error or f"{time_limit:g}"
            report._record(False, case.name, f"still running after {limit} s, so it was "
                           "stopped (an endless loop?).", case.hint)
            stopped = "not run: the case above ran past the time limit."
            continue
        why, hint = _judge(outcome, reference_fn, case, rtol, atol, mistakes)
        report._record(not why, case.name, why, hint)
    return _finish(report, verbose)


def _finish(report: Report, verbose: bool) -> Report:
    tampered = _tampered()
    if tampered:
        report.n_passed = 0
        report.lines.append(f"{FAIL} the checker itself: {tampered} was replaced in this "
                            "session, so no verdict can be trusted. Restart the kernel.")
        report.n_cases += 1
    return report.show() if verbose else report


def _is_unanswered(got: Any) -> bool:
    return got is ... or got is None


def check_value(name: str, got: Any, expected: Any, *, rtol: float = 0.1, atol: float = 0.0,
                title: str, hint: str = "", verbose: bool = True,
                mistakes: Sequence[Mistake] = ()) -> Report:
    """Check one value (a prediction, a measured number) against the expected one.

    A wrong value is told whether it is too high or too low, never the expected value; a
    value that matches one of ``mistakes`` (within the tolerance) gets that mistake's text.
    """
    report = Report(title)
    if _is_unanswered(got):
        report._record(False, name, NO_ANSWER)
        return _finish(report, verbose)
    try:
        why = _cmp.compare(got, expected, rtol=rtol, atol=atol, reveal=False)
    except Exception as err:
        why = f"could not be compared ({type(err).__name__}: {err})."
    if why:
        for mistake in mistakes:
            try:
                if not _cmp.compare(got, mistake.answer, rtol=rtol, atol=atol):
                    hint = mistake.text()
                    break
            except Exception:
                continue
    report._record(not why, name, why, hint)
    return _finish(report, verbose)


def check_expression(name: str, got: Any, expected: Any, *, title: str, hint: str = "",
                     verbose: bool = True, symbols: Sequence[Any] = (),
                     domain: dict | None = None, mistakes: Sequence[Mistake] = (),
                     time_limit: float = 10.0) -> Report:
    """Check a derived sympy expression (or matrix) against the expected one.

    The answer is rebuilt on the exercise's symbols (matched by name, so a learner's own
    ``sp.symbols(...)`` works), then compared symbolically and, failing that, numerically at
    random points of ``domain``. A wrong answer is told where it differs, not what it should be.

    Args:
        name, title, hint, verbose: as for :func:`check_value`.
        got: the learner's expression; lists and tuples are read as a matrix like ``expected``.
        expected: the right answer, on the exercise's symbols.
        symbols: the exercise's symbols (default: those of ``expected``).
        domain: ``{symbol: (low, high) or range(...)}`` where the answer must hold.
        mistakes: common wrong expressions, named when the answer equals one.
        time_limit: seconds for the whole comparison.
    """
    import sympy as sp

    from sseq import exercises_sympy as _sym

    report = Report(title)
    if _is_unanswered(got):
        report._record(False, name, "no answer yet: replace the ... with your expression.")
        return _finish(report, verbose)
    expected = sp.sympify(expected)
    names = {s.name: s for s in [*expected.free_symbols, *symbols]}
    try:
        with _guard.time_limit(time_limit):
            ok, why = _sym.equivalent(_sym.to_sympy(got, like=expected), expected,
                                      symbols=names, domain=domain or {})
            for mistake in [] if ok else mistakes:
                if _sym.equivalent(_sym.to_sympy(got, like=expected), mistake.answer,
                                   symbols=names, domain=domain or {}, simplify=False)[0]:
                    hint = mistake.text()
                    break
    except _guard.TimeLimitExceeded:
        ok, why = False, (f"could not be decided within {time_limit:g} s; simplify your "
                          "expression (sympy.simplify) and run the cell again.")
    except (sp.SympifyError, TypeError, ValueError, AttributeError, sp.ShapeError) as err:
        ok, why = False, f"could not be read as a sympy expression ({err})."
    report._record(ok, name, why, hint)
    return _finish(report, verbose)


# --- a checker replaced in the learner's session is noticed -------------------------------------


def _watched() -> dict[str, Any]:
    import sys

    here = sys.modules[__name__]
    return {"sseq.exercises.compare": (here, "compare"),
            "sseq.exercises.check_function": (here, "check_function"),
            "sseq.exercises.check_value": (here, "check_value"),
            "sseq.exercises.check_expression": (here, "check_expression"),
            "sseq.exercises_compare.compare": (_cmp, "compare"),
            "sseq.exercises_guard.run_learner": (_guard, "run_learner")}


_ORIGINAL = {name: (getattr(module, attr), getattr(module, attr).__code__)
             for name, (module, attr) in _watched().items()}


def _tampered() -> str:
    """The name of a core function that was replaced (or had its code swapped), or ''."""
    for name, (module, attr) in _watched().items():
        function, code = _ORIGINAL[name]
        now = getattr(module, attr, None)
        if now is not function or function.__code__ is not code:
            return name
    return ""
