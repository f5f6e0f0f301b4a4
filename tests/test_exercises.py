"""The checker framework: a right answer passes, each kind of wrong answer is caught and named,
and no answer, however hostile, crashes it, hangs it or fools it."""

from __future__ import annotations

import os
import signal
import sys
import time

import numpy as np
import pytest
import sympy as sp
import torch

import sseq.exercises
from sseq.exercises import (
    Case,
    Mistake,
    case_generator,
    check_expression,
    check_function,
    check_value,
    compare,
    grading_seed,
)


def reference(x):
    return 2 * x


CASES = [Case("small", (torch.arange(3.0),)), Case("matrix", (torch.ones(2, 2),), hint="double it")]


def run(fn, **kwargs):
    return check_function(fn, reference, CASES, title="Double", verbose=False, **kwargs)


def test_a_correct_answer_passes_every_case():
    report = run(lambda x: x + x)
    assert report and report.n_passed == 2 and not report.unanswered
    assert str(report).splitlines() == [
        "✓ small", "✓ matrix", "Double: all 2 checks pass. Well done!"]


@pytest.mark.parametrize(("learner", "message"), [
    (lambda x: x * 3, "values differ at"),
    (lambda x: (2 * x).reshape(-1, 1), "shape differs: expected (3,), got (3, 1)"),
    (lambda x: (2 * x).double(), "dtype differs: expected torch.float32, got torch.float64"),
    (lambda x: (2 * x).numpy(),
     "expected a tensor of shape (3,) and dtype torch.float32, got an array"),
    (lambda x: None, "got None"),
    (lambda x: 1 / 0, "raised ZeroDivisionError: division by zero"),
])
def test_each_kind_of_wrong_answer_is_caught_with_its_reason(learner, message):
    report = run(learner)
    assert not report
    assert message in report.lines[0]
    assert report.lines[0].startswith("✗ small")
    assert report.lines[1].endswith("Hint: double it")
    assert report.verdict() == "Double: 0 of 2 checks pass. Keep going."


def test_not_implemented_stub_is_reported_kindly():
    def stub(x):
        raise NotImplementedError

    report = run(stub)
    assert report.lines[0] == "✗ small: not implemented yet."
    assert report.unanswered


def test_value_mismatch_names_the_first_differing_entry_and_its_relative_error():
    got, expected = torch.tensor([1.0, 2.0, 5.0]), torch.tensor([1.0, 2.0, 3.0])
    why = compare(got, expected, rtol=1e-5, atol=1e-6)
    assert why == ("values differ at 1 of 3 entries; first at index (2,): expected 3, got 5 "
                   "(relative error 6.7e-01; tolerance rtol 1e-05, atol 1e-06).")


def test_feedback_never_reads_as_equal():
    """A float32 slip in a float64 case and a tiny complex error print digits that differ."""
    e = torch.tensor([0.6994172911384612], dtype=torch.float64)
    why = compare(e.float().double(), e, rtol=1e-10, atol=0)
    shown = why.split("expected ")[1].split(" (")[0]
    expected_text, got_text = shown.split(", got ")
    assert expected_text != got_text and "relative error" in why
    z = torch.tensor([0.9900498337491681 + 0j], dtype=torch.complex128)
    why = compare(z * (1 + 3e-9), z, rtol=1e-9, atol=1e-12)
    expected_text, got_text = why.split("expected ")[1].split(" (")[0].split(", got ")
    assert expected_text != got_text and "j" in got_text


def test_compare_handles_tuples_and_numbers():
    assert compare((1.0, np.ones(2)), (1.0, np.ones(2)), rtol=0, atol=0) == ""
    assert compare((1.0,), (1.0, 2.0), rtol=0, atol=0).startswith("expected a tuple of 2 items")
    assert compare("a", 1.0, rtol=0, atol=0) == "expected a number, got str 'a'."
    assert compare(True, 1.0, rtol=0, atol=0) == "expected a number, got bool True."


# --- tolerances: just inside and just outside, for every kind of comparison ---------------------


RTOL, ATOL = 1e-5, 1e-6


@pytest.mark.parametrize(("expected", "nudge"), [
    (torch.tensor([1.0], dtype=torch.float64), lambda e, step: e + step),
    (np.array([1.0]), lambda e, step: e + step),
    (torch.tensor([1 + 1j], dtype=torch.complex128), lambda e, step: e + 1j * step),
    (1.0, lambda e, step: e + step),
    (1.0, lambda e, step: torch.tensor(e + step, dtype=torch.float64)),  # a 0-d tensor
    ((1.0, torch.tensor([1.0], dtype=torch.float64)), lambda e, step: (e[0], e[1] + step)),
    (1 + 1j, lambda e, step: e + 1j * step),
], ids=["tensor", "array", "complex", "float", "0-d tensor", "tuple", "complex number"])
def test_tolerance_boundary_for_each_kind(expected, nudge):
    """Just inside atol + rtol·|expected| passes, just outside fails."""
    complex_ = isinstance(expected, complex) or (isinstance(expected, torch.Tensor)
                                                 and expected.is_complex())
    size = 2**0.5 if complex_ else 1.0
    bound = ATOL + RTOL * size
    assert compare(nudge(expected, 0.9 * bound), expected, rtol=RTOL, atol=ATOL) == ""
    assert compare(nudge(expected, 1.1 * bound), expected, rtol=RTOL, atol=ATOL) != ""


@pytest.mark.parametrize(("factor", "passes"), [(0.9, True), (1.1, False)])
def test_check_function_default_tolerance_boundary(factor, passes):
    """Protects: check_function's default tolerance, |got − expected| <= 1e-6 + 1e-5·|expected|
    per entry: an answer off by 0.9 of it passes, by 1.1 of it fails (a checker whose default
    tolerance was loosened, or tightened, fails this)."""
    def off_by(x):
        expected = 2 * x
        return expected + factor * (1e-6 + 1e-5 * expected.abs())

    cases = [Case("float64", (torch.tensor([0.5, 1.0, 3.0], dtype=torch.float64),))]
    report = check_function(off_by, reference, cases, title="Double", verbose=False)
    assert bool(report) is passes


def test_integer_and_bool_results_compare_exactly():
    assert compare(torch.tensor([3]), torch.tensor([3]), rtol=0.5, atol=1) == ""
    assert "values differ" in compare(torch.tensor([4]), torch.tensor([3]), rtol=0.5, atol=1)
    assert compare(np.array([True]), np.array([True]), rtol=0, atol=0) == ""


def test_check_value_tolerance_boundary():
    assert check_value("x", 1.0999, 1.0, rtol=0.1, title="T", verbose=False)
    assert not check_value("x", 1.1001, 1.0, rtol=0.1, title="T", verbose=False)
    assert check_value("n", 135, 135, rtol=0, atol=0, title="T", verbose=False)
    assert not check_value("n", 136, 135, rtol=0, atol=0, title="T", verbose=False)


def test_check_expression_numeric_tolerance_boundary():
    x = sp.Symbol("x", positive=True)
    near = check_expression("e", sp.sqrt(2) * x * (1 + sp.Rational(1, 10**14)), sp.sqrt(2) * x,
                            title="T", verbose=False)
    far = check_expression("e", sp.sqrt(2) * x * (1 + sp.Rational(1, 10**10)), sp.sqrt(2) * x,
                           title="T", verbose=False)
    assert near and not far


# --- no answer is given away --------------------------------------------------------------------


def test_a_wrong_prediction_does_not_print_the_expected_value():
    report = check_value("steps", 1, 135, rtol=0, atol=0, title="T", verbose=False)
    assert "135" not in str(report) and "too low by a factor of 10 or more" in str(report)
    report = check_value("bytes", (100, 10), (256, 5_120_000), rtol=0.01, title="T",
                         verbose=False)
    assert "256" not in str(report) and "item 0: your value is too low" in str(report)


def test_a_wrong_derivation_does_not_print_the_difference():
    lam, k = sp.symbols("lambda k", positive=True)
    expected = lam ** (2 * k) * (1 - lam**2)
    report = check_expression("R2", 0, expected, title="T", verbose=False,
                              domain={lam: (0.1, 0.9), k: range(1, 5)})
    assert "lambda**(2*k)" not in str(report) and "(1 - lambda**2)" not in str(report)
    assert "differs from the expected result (at" in str(report) and "yours is 0" in str(report)


def test_a_recognised_mistake_is_named():
    lam, k = sp.symbols("lambda k", positive=True)
    mistakes = [Mistake("the covariance", "square it.", lam**k)]
    report = check_expression("R2", lam**k, lam ** (2 * k), title="T", verbose=False,
                              mistakes=mistakes)
    assert "Hint: this is the covariance: square it." in str(report)
    tripled = Mistake("the result tripled", "double, not triple.", lambda x: 3 * x)
    report = run(lambda x: 3 * x, mistakes=[tripled])
    assert all("Hint: this is the result tripled: double, not triple." in ln
               for ln in report.lines)
    report = check_value("v", 8.0, 1.0, title="T", verbose=False,
                         mistakes=[Mistake("bits", "count bytes.", 8.0)])
    assert "Hint: this is bits: count bytes." in str(report)


# --- derivations: equivalent forms pass ---------------------------------------------------------


LAM, K = sp.symbols("lambda k", positive=True)
R2 = LAM ** (2 * K) * (1 - LAM**2)
DOMAIN = {LAM: (0.05, 0.95), K: range(1, 10)}


def _learners_own():
    lam, k = sp.symbols("lambda k")  # no assumptions
    return lam ** (2 * k) * (1 - lam**2)


def _floats():
    return LAM ** (2.0 * K) * (1.0 - LAM**2.0)


def _piecewise():
    lam, k = sp.symbols("lambda k")
    j = sp.Symbol("j", integer=True, nonnegative=True)
    variance = sp.summation(lam ** (2 * j), (j, 0, sp.oo))  # a Piecewise: |λ²| < 1 or not
    assert isinstance(variance, sp.Piecewise)
    return lam ** (2 * k) / variance


@pytest.mark.parametrize("answer", [_learners_own, _floats, _piecewise,
                                    lambda: LAM ** (2 * K) - LAM ** (2 * K + 2)])
def test_equivalent_derivations_pass(answer):
    assert check_expression("R2", answer(), R2, title="T", verbose=False, domain=DOMAIN)


def test_exp_log_form_and_positive_symbols_pass():
    w, T, t = sp.symbols("w T t")
    assert check_expression("J", sp.exp((T - t) * sp.log(w)), w ** (T - t), title="T",
                            verbose=False, domain={w: (0.2, 1.5), T: range(5, 9),
                                                   t: range(0, 5)})
    a, dt = sp.symbols("a Delta")
    dt_pos = sp.Symbol("Delta", positive=True)
    assert check_expression("A", (2 + a * dt_pos) / (2 - a * dt_pos), (1 + dt * a / 2) /
                            (1 - dt * a / 2), title="T", verbose=False,
                            domain={a: (-3, 3), dt: (0.01, 0.5)})


def test_derivation_unreadable_or_unfinished_answers():
    assert "no answer yet" in check_expression("R2", ..., R2, title="T", verbose=False).lines[0]
    text = check_expression("R2", "lambda**2", R2, title="T", verbose=False).lines[0]
    assert "could not be read as a sympy expression (a string" in text
    x_prev = sp.Symbol("x_prev")
    text = check_expression("R2", R2 * x_prev, R2, title="T", verbose=False).lines[0]
    assert "contains x_prev, which the answer does not depend on" in text
    row = sp.Matrix([[1, 2, 3, 4]])
    text = check_expression("row", sp.Matrix([1, 2, 3, 4]), row, title="T", verbose=False)
    assert "shape differs: expected 1×4, got 4×1" in str(text)
    assert check_expression("row", [1, 2, 3, 4], row, title="T", verbose=False)


@pytest.mark.timeout(10, method="thread")
def test_check_expression_has_a_time_limit(monkeypatch):
    def endless(expr, *args, **kwargs):
        while True:
            time.sleep(0.01)

    monkeypatch.setattr(sp, "simplify", endless)
    start = time.perf_counter()
    report = check_expression("R2", R2, R2, title="T", verbose=False, time_limit=0.3)
    assert time.perf_counter() - start < 2.0
    assert "could not be decided within 0.3 s" in report.lines[0]


# --- never crashes, never hangs -----------------------------------------------------------------


@pytest.mark.timeout(10, method="thread")
def test_an_endless_loop_is_stopped_by_the_time_limit():
    def forever(x):
        while True:
            time.sleep(0.01)

    start = time.perf_counter()
    report = run(forever, time_limit=0.2)
    assert time.perf_counter() - start < 2.0
    assert "still running after 0.2 s" in report.lines[0]


@pytest.mark.timeout(10, method="thread")
def test_the_time_limit_cannot_be_swallowed():
    def swallows_exceptions(x):
        while True:
            try:
                time.sleep(0.01)
            except Exception:  # the learner's catch-all
                pass

    def swallows_once(x):
        try:
            while True:
                pass
        except BaseException:  # caught once: the alarm fires again
            pass
        while True:
            pass

    for learner in (swallows_exceptions, swallows_once):
        start = time.perf_counter()
        report = run(learner, time_limit=0.2)
        assert time.perf_counter() - start < 2.0, learner.__name__
        assert "still running after 0.2 s" in report.lines[0]


@pytest.mark.timeout(10, method="thread")
def test_one_endless_loop_stops_the_whole_exercise_at_once():
    cases = [Case(f"case {i}", (torch.ones(2),), hint="no loop") for i in range(5)]

    def forever(x):
        while True:
            pass

    start = time.perf_counter()
    report = check_function(forever, reference, cases, title="T", verbose=False,
                            time_limit=0.3)
    assert time.perf_counter() - start < 1.5  # not 5 × 0.3 s
    assert report.lines[0] == ("✗ case 0: still running after 0.3 s, so it was stopped (an "
                               "endless loop?). Hint: no loop")
    assert report.lines[1:] == [f"✗ case {i}: not run: the case above ran past the time limit."
                                for i in range(1, 5)]
    assert (report.n_cases, report.n_passed) == (5, 0)


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="POSIX timers")
@pytest.mark.timeout(10, method="thread")
def test_an_outer_alarm_survives_the_checker():
    fired = []
    previous = signal.signal(signal.SIGALRM, lambda *a: fired.append(time.perf_counter()))
    try:
        start = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, 0.6)  # falls after the checker returns
        assert run(lambda x: 2 * x)
        left = signal.getitimer(signal.ITIMER_REAL)[0]
        assert 0 < left < 0.6
        time.sleep(left + 0.2)
        assert len(fired) == 1 and fired[0] - start == pytest.approx(0.6, abs=0.15)

        fired.clear()
        signal.setitimer(signal.ITIMER_REAL, 0.1)  # falls while the learner's code runs

        def slow(x):
            time.sleep(0.3)
            return 2 * x

        assert run(slow, time_limit=5.0)
        assert len(fired) == 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_the_time_limit_works_outside_the_main_thread():
    import threading

    box = {}

    def forever(x):
        while True:
            time.sleep(0.01)

    thread = threading.Thread(target=lambda: box.setdefault("r", run(forever, time_limit=0.2)))
    thread.start()
    thread.join(10)
    assert not thread.is_alive() and "still running" in box["r"].lines[0]


@pytest.mark.parametrize(("got", "expected", "ok"), [
    (10**400, 1.5, False),
    (10**400, 10**400, True),
    (10**400 + 1, 10**400, False),
    (float("inf"), 1.0, False),
    (float("nan"), float("nan"), True),
    (torch.tensor(135), 135, True),
    (np.array(2.5), 2.5, True),
    (np.float32(2.5), 2.5, True),
])
def test_odd_numbers_get_a_verdict(got, expected, ok):
    report = check_value("n", got, expected, rtol=0, atol=0, title="T", verbose=False)
    assert bool(report) is ok and report.n_cases == 1


def test_conjugate_bit_and_parameters_are_ordinary_tensors():
    z = torch.tensor([1 + 2j, 3 - 1j], dtype=torch.complex128)

    def conj_ref(x):
        return torch.conj_physical(2 * x)

    cases = [Case("complex", (z,))]
    assert check_function(lambda x: (2 * x).conj(), conj_ref, cases, title="T", verbose=False)
    assert "values differ" in str(check_function(lambda x: (3 * x).conj(), conj_ref, cases,
                                                 title="T", verbose=False))
    report = run(lambda x: torch.nn.Parameter(2 * x))
    assert report, str(report)
    report = run(lambda x: torch.nn.Parameter(3 * x))
    assert "values differ" in report.lines[0]


def test_odd_objects_never_crash_the_checker():
    class Weird:
        def __eq__(self, other):
            raise RuntimeError("no comparing me")

        @property
        def shape(self):
            raise RuntimeError("no shape either")

    assert "got Weird" in run(lambda x: Weird()).lines[0]
    assert not check_value("v", Weird(), "text", title="T", verbose=False)
    assert not check_value("v", Weird(), 1.0, title="T", verbose=False)
    assert "got generator" in run(lambda x: (i for i in x)).lines[0]


# --- not fooled ---------------------------------------------------------------------------------


def test_a_function_that_peeks_at_the_callers_frames_does_not_pass():
    def peek(x):
        frame = sys._getframe(1)
        while frame is not None:
            if "expected" in frame.f_locals:  # the reference's answer, if it were computed
                return frame.f_locals["expected"]
            frame = frame.f_back
        return x

    def call_the_reference(x):
        frame = sys._getframe(1)
        while frame is not None:
            if "reference_fn" in frame.f_locals:
                return frame.f_locals["reference_fn"](x)
            frame = frame.f_back
        return x

    assert not run(peek)
    report = run(call_the_reference)
    assert not report and "calls tests.test_exercises.reference" in report.lines[0]


def test_submitting_the_reference_is_reported_as_such():
    report = run(reference)
    assert not report
    assert report.lines[0] == ("✗ small: calls tests.test_exercises.reference, the book's "
                               "own implementation; write your own.")
    from sseq.checks import ch01
    from sseq.memory import attend as renamed

    report = ch01.check_attend(lambda q, K, V: renamed(q, K, V), verbose=False)
    assert not report and "calls sseq.memory.attend" in report.lines[0]


def test_monkeypatching_compare_does_not_fool_the_checker(monkeypatch):
    monkeypatch.setattr(sseq.exercises, "compare", lambda *a, **k: "")
    report = run(lambda x: 3 * x)
    assert not report and report.n_passed == 0
    assert "values differ" in report.lines[0]
    assert report.lines[-1] == (
        "✗ the checker itself: sseq.exercises.compare was replaced in this session, so no "
        "verdict can be trusted. Restart the kernel.")
    assert (report.n_cases, report.n_passed) == (len(CASES) + 1, 0)


def test_deleting_compare_is_noticed(monkeypatch):
    monkeypatch.delattr(sseq.exercises, "compare")
    report = run(lambda x: 2 * x)
    assert not report and "sseq.exercises.compare was replaced" in report.lines[-1]


def test_swapping_compares_code_is_noticed(monkeypatch):
    from sseq import exercises_compare

    if "MUTANT_UNDER_TEST" in os.environ:  # make mutants: compare is mutmut's trampoline,
        pytest.skip("whose closure a plain function's code cannot replace")
    monkeypatch.setattr(exercises_compare.compare, "__code__", (lambda *a, **k: "").__code__)
    report = run(lambda x: 3 * x)
    assert not report and "sseq.exercises.compare was replaced" in report.lines[-1]


def test_a_function_that_changes_its_inputs_does_not_pass():
    def in_place(x):
        return x.mul_(2)

    report = run(in_place)
    assert not report
    assert report.lines[1] == ("✗ matrix: changed its input x in place; leave the inputs as "
                               "they were and return a new value. Hint: double it")


def test_float32_arithmetic_on_a_float64_case_does_not_pass():
    cases = [Case("float64", (torch.linspace(0.1, 1.0, 7, dtype=torch.float64).exp(),))]
    report = check_function(lambda x: (2 * x.float()).double(), reference, cases, title="T",
                            verbose=False, rtol=1e-5, atol=1e-6)  # loose enough for float32
    assert not report and "computed in float32" in report.lines[0]
    hinted = [Case("float64", cases[0].args, hint="a hint about another mistake")]
    report = check_function(lambda x: (2 * x.float()).double(), reference, hinted, title="T",
                            verbose=False, rtol=1e-10, atol=0.0)  # the values differ, all float32
    assert "was it computed in float32?" in report.lines[0]
    assert "another mistake" not in report.lines[0]  # the float32 remark is the whole story
    assert "Hint:" not in report.lines[0]  # nor any other hint
    assert check_function(lambda x: x + x, reference, cases, title="T", verbose=False)
    # An exact answer is a float32 number too; the reference's round-off must not fail it.
    exact = [Case("exact", (torch.tensor([0.25, 0.125, 0.5, 0.0625, 2.0], dtype=torch.float64),))]
    assert check_function(lambda x: x + x, lambda x: 2 * x * (1 + 2.0**-50), exact, title="T",
                          verbose=False)
    # Another mistake whose values happen to be float32 numbers (all zeros: reading out a zero
    # state before the update, Ex 5.4) gets its own hint, not the float32 remark.
    report = check_function(lambda x: torch.zeros_like(x), reference, hinted, title="T",
                            verbose=False)
    assert "another mistake" in report.lines[0] and "float32" not in report.lines[0]


def test_a_line_budget_catches_a_python_loop():
    def ref(x):
        return x.cumsum(0)

    def loop(x):
        out = torch.empty_like(x)
        total = 0.0
        for i in range(len(x)):
            total = total + x[i]
            out[i] = total
        return out

    cases = [Case("long", (torch.ones(500, dtype=torch.float64),), max_lines=100, hint="cumsum")]
    report = check_function(loop, ref, cases, title="T", verbose=False)
    assert report.lines == ["✗ long: ran more than 100 lines of your Python on this case: the "
                            "exercise asks for whole-tensor operations, without a Python loop. "
                            "Hint: cumsum"]
    assert check_function(lambda x: torch.cumsum(x, 0), ref, cases, title="T", verbose=False)


def test_the_tracer_and_profiler_are_restored():
    """Protects a debugger's or coverage tool's hooks: set before the checker, still set after."""
    def tracer(frame, event, arg):
        return None

    def profiler(frame, event, arg):
        return None

    before = sys.gettrace(), sys.getprofile()
    cases = [Case("long", (torch.ones(3),), max_lines=10)]
    try:
        sys.settrace(tracer)
        sys.setprofile(profiler)
        check_function(lambda x: 2 * x, reference, cases, title="T", verbose=False)
        assert (sys.gettrace(), sys.getprofile()) == (tracer, profiler)
    finally:
        sys.settrace(before[0])
        sys.setprofile(before[1])


# --- cases for grading --------------------------------------------------------------------------


def test_case_generator_gives_the_books_cases_unless_a_seed_is_set():
    book = torch.randn(3, generator=case_generator(5))
    assert torch.equal(book, torch.randn(3, generator=torch.Generator().manual_seed(5)))
    other = torch.randn(3, generator=case_generator(5, seed=1))
    assert not torch.equal(book, other)
    with grading_seed(1):
        assert torch.equal(other, torch.randn(3, generator=case_generator(5)))
    assert torch.equal(book, torch.randn(3, generator=case_generator(5)))


def test_check_function_prints_the_report(capsys):
    check_function(lambda x: 2 * x, reference, CASES, title="Double")
    assert capsys.readouterr().out.endswith("Double: all 2 checks pass. Well done!\n")


def test_check_function_rejects_a_non_function():
    with pytest.raises(TypeError, match="learner_fn must be a function, got int"):
        check_function(3, reference, CASES, title="Double")


def test_check_value_within_tolerance_and_unanswered():
    assert check_value("bytes", 1.05e6, 1e6, rtol=0.1, title="Predict", verbose=False)
    assert not check_value("bytes", 2e6, 1e6, rtol=0.1, title="Predict", verbose=False)
    report = check_value("bytes", ..., 1e6, title="Predict", verbose=False)
    assert "no answer yet" in report.lines[0] and report.unanswered


def test_check_expression_is_symbolic():
    lam, k = sp.symbols("lambda k", positive=True)
    expected = lam ** (2 * k) * (1 - lam**2)
    assert check_expression("R2", lam ** (2 * k) - lam ** (2 * k + 2), expected, title="Derive",
                            verbose=False)
    wrong = check_expression("R2", lam ** (2 * k), expected, title="Derive", verbose=False)
    assert "differs from the expected result" in wrong.lines[0]
    unanswered = check_expression("R2", ..., expected, title="D", verbose=False)
    assert "no answer yet" in unanswered.lines[0] and unanswered.unanswered


# --- the page for instructors shows what the checkers really do --------------------------------


def _blocks(language: str) -> list[str]:
    from tests.conftest import ROOT

    text = (ROOT / "book" / "instructors.md").read_text()
    return [b.split("\n", 1)[1] for b in text.split("```")[1::2] if b.startswith(language + "\n")]


def test_the_instructors_page_shows_the_real_output():
    from sseq.checks import ch01

    def unscaled(q, K, V):
        return torch.softmax(K @ q, dim=0) @ V

    shown = next(b for b in _blocks("text") if "Exercise 1.1 (attend)" in b)
    assert shown.strip() == str(ch01.check_attend(unscaled, verbose=False))


def test_the_instructors_page_checker_example_works():
    namespace: dict = {}
    exec(next(b for b in _blocks("python") if "def check_convolve" in b), namespace)  # noqa: S102
    check = namespace["check_convolve"]

    def mine(u, K):
        l, taps = u.shape[1], K.shape[-1]
        y = torch.zeros_like(u)
        for j in range(min(l, taps)):
            y[:, j:] += (K[..., j] * u[:, : l - j])
        return y

    assert check(mine, verbose=False) and check(mine, verbose=False, seed=3)
    flipped = check(lambda u, K: mine(u, K.flip(-1)), verbose=False)
    assert not flipped and "this is a correlation" in str(flipped)
    cases_file = next(b for b in _blocks("python") if "CASES = {" in b)
    exec(cases_file, namespace)  # noqa: S102
    assert isinstance(namespace["CASES"]["ex-ch01-attend"][0], Case)


# --- the comparison's pieces, value by value ----------------------------------------------------
@pytest.mark.parametrize(("got", "expected", "said"), [
    (1 + 1j, 1.0, "is not the measured value"), (2.0, 1 + 0j, "is not the measured value"),
    (-1.0, 1.0, "has the wrong sign"), (0.5, -2.0, "has the wrong sign"),
    (0.5, 0.6, "is too low"), (1.5, 1.0, "is too high"), (1.0, 1.5, "is too low"),
    (3.0, 2.0, "is too high"), (1.99, 1.0, "is too high"),
    (2.0, 1.0, "is too high by a factor of 2 or more"),
    (2.5, 1.0, "is too high by a factor of 2 or more"),
    (9.99, 1.0, "is too high by a factor of 2 or more"),
    (10.0, 1.0, "is too high by a factor of 10 or more"),
    (10.5, 1.0, "is too high by a factor of 10 or more"),
    (0.5, 1.0, "is too low by a factor of 2 or more"),
    (0.0, 1.0, "is too low by a factor of 10 or more"),
    (0.0, -1.0, "is too high by a factor of 10 or more"),
    (1.0, 0.0, "is too high"), (-1.0, 0.0, "is too low"), (float("inf"), 1.0, "is too high"),
])
def test_direction_says_how_far_off_without_the_value(got, expected, said):
    """Protects the hint a prediction gets instead of the expected value."""
    from sseq.exercises_compare import _direction

    assert _direction(got, expected) == said


def test_describe_names_types_shapes_and_huge_ints():
    from sseq.exercises_compare import describe

    assert describe(torch.nn.Parameter(torch.zeros(2))) == (
        "an nn.Parameter of shape (2,) and dtype torch.float32")
    assert describe(torch.zeros(2, 1, dtype=torch.float64)) == (
        "a tensor of shape (2, 1) and dtype torch.float64")
    assert describe(np.zeros(3, dtype=np.int32)) == "an array of shape (3,) and dtype int32"
    assert (describe(None), describe(...)) == ("None", "Ellipsis")
    assert describe(10**30) == "an int of about 31 digits"
    assert describe(-10**40) == "an int of about 41 digits"
    assert describe(10**30 - 1) == f"int {10**30 - 1}"
    assert (describe(True), describe(2.5), describe("a")) == ("bool True", "float 2.5", "str 'a'")
    assert describe([1]) == "list"


def test_as_number_takes_numbers_only():
    from fractions import Fraction

    from sseq.exercises_compare import as_number

    for x in (torch.tensor([2.0]), torch.tensor(True), np.bool_(True), True, "3", [1.0], None):
        assert as_number(x) is None, x
    assert as_number(torch.tensor(1 + 2j).conj()) == 1 - 2j
    assert as_number(np.float32(1.5)) == 1.5 and as_number(np.array(2.0)) == 2.0
    half = as_number(Fraction(1, 2))
    assert half == 0.5 and type(half) is float
    assert as_number(10**400) == 10**400 and as_number(2 + 0j) == 2 + 0j


def test_nan_and_exact_tolerance_edges():
    """Protects NaN handling (NaN matches NaN only) and that |g − e| = atol + rtol|e| passes."""
    nan = float("nan")
    assert compare(nan, nan, rtol=0, atol=0) == ""
    assert compare(nan, 1.0, rtol=0, atol=0) != "" and compare(1.0, nan, rtol=0, atol=0) != ""
    assert compare(complex(nan, 0), complex(nan, 1), rtol=0, atol=0) == ""
    assert compare(complex(nan, 0), 1 + 0j, rtol=0, atol=0) != ""
    assert compare(1 + 0j, complex(nan, 0), rtol=0, atol=0) != ""
    assert compare(1.5, 1.0, rtol=0.5, atol=0) == ""
    assert compare(1.75, 1.0, rtol=0.5, atol=0.25) == ""
    assert compare(1 + 0.5j, 1 + 0j, rtol=0.5, atol=0) == ""
    assert compare(float("inf"), 1.0, rtol=1, atol=1) != ""


def test_number_messages_in_full():
    assert compare(2.0, 1.0, rtol=1e-5, atol=1e-6) == (
        "expected 1, got 2 (relative error 1.0e+00; tolerance rtol 1e-05, atol 1e-06).")
    assert compare(2.0, 1.0, rtol=1e-5, atol=1e-6, reveal=False) == (
        "your value is too high by a factor of 2 or more (tolerance: rtol 1e-05, atol 1e-06).")


def test_format_pair_prints_just_enough_digits():
    from sseq.exercises_compare import format_pair

    assert format_pair(0.1 + 1j, 0.1 + 2j) == ("0.1+1j", "0.1+2j")  # equal parts: 6 digits
    assert format_pair(1 + 1j, 2.0) == ("1+1j", "2+0j")
    assert format_pair(1.0, 1.0000001) == ("1", "1.0000001")
    assert format_pair(3, 4) == ("3", "4")
    assert format_pair(1, 0.1 + 0.2) == ("1", "0.3")
    assert format_pair(0.1234567 + 1j, 0.1234567 + 2j) == ("0.123457+1j", "0.123457+2j")
    assert compare(1 + 1e-9j, 1.0, rtol=1e-5, atol=0) == ""


def test_float32_detection_handles_huge_and_missing_values():
    """Protects the float32 check on values float32 cannot hold (no overflow warning) and NaN."""
    from sseq.exercises_compare import _fits_float32

    x = np.array([1e300, 0.5, np.nan, np.inf, 0.1])
    assert _fits_float32(x).tolist() == [False, True, False, True, False]
    assert _fits_float32(x + 0.5j).tolist() == [False, True, False, True, False]


def test_graded_cases_come_from_the_same_seed_in_every_release():
    """Protects the reproducibility of grades: an instructor's --seed gives the same hidden
    cases in every release of sseq (the mix of the book's seed and the instructor's is fixed,
    (default · 1000003 + seed · 7919 + 97) mod 2^62); changing it would change every graded
    case that was ever drawn."""
    from sseq.exercises_cases import case_generator

    assert case_generator(11).initial_seed() == 11
    assert case_generator(11, 5).initial_seed() == 11039725
    assert case_generator(0, 0).initial_seed() == 97
    assert case_generator(3, 2**61).initial_seed() == 2305843009216694058


T64 = torch.float64


@pytest.mark.parametrize(("got", "expected", "kwargs", "said"), [
    ((1.0,), [1.0, 2.0], {}, "expected a list of 2 items, got tuple of 1 items."),
    (3.0, (1.0, 2.0), {}, "expected a tuple of 2 items, got float 3.0."),
    ((1.0, 2.5), (1.0, 2.0), {"reveal": False},
     "item 1: your value is too high (tolerance: exact)."),
    (torch.tensor(True), True, {}, ""), (np.bool_(False), False, {}, ""),
    (torch.tensor(False), True, {},
     "expected True, got a tensor of shape () and dtype torch.bool."),
    (torch.tensor([True]), True, {},
     "expected True, got a tensor of shape (1,) and dtype torch.bool."),
    (1, True, {}, "expected True, got int 1."),
    (False, True, {"reveal": False}, "got bool False, which is not the answer."),
    ("a", "a", {}, ""), ("b", "a", {}, "expected 'a', got str 'b'."),
    (np.array([1, 2]), "a", {}, "expected 'a', got an array of shape (2,) and dtype int64."),
    (torch.tensor([1, 3]), torch.tensor([1, 2]), {"rtol": 1.0, "atol": 1.0},
     "values differ at 1 of 2 entries; first at index (1,): expected 2, got 3 (relative error "
     "5.0e-01; tolerance rtol 1, atol 1)."),
    (torch.tensor([1.0, float("nan"), float("inf")], dtype=T64),
     torch.tensor([1.0, 2.0, 3.0], dtype=T64), {},
     "2 of 3 entries are NaN where a finite value was expected; the first at index (1,)."),
    (torch.tensor([float("inf"), 1.0], dtype=T64), torch.tensor([1.0, 2.0], dtype=T64), {},
     "1 of 2 entries are infinite where a finite value was expected; the first at index (0,)."),
    (torch.tensor([float("nan"), 2.5], dtype=T64), torch.tensor([float("nan"), 2.0], dtype=T64),
     {"reveal": False}, "values differ at 1 of 2 entries; the first at index (1,) is too high."),
    (torch.tensor([float("inf"), 2.0], dtype=T64), torch.tensor([float("inf"), 2.0], dtype=T64),
     {}, ""),
    (torch.tensor([0.5], dtype=T64), torch.tensor([0.0], dtype=T64), {},
     "values differ at 1 of 1 entries; first at index (0,): expected 0, got 0.5 (relative error "
     "5.0e-01; tolerance exact)."),
    (torch.tensor([1.5, 1e308], dtype=T64), torch.tensor([1.0, -1e308], dtype=T64),
     {"rtol": 0.5, "atol": 0}, "values differ at 1 of 2 entries; first at index (1,): expected "
     "-1e+308, got 1e+308 (relative error inf; tolerance rtol 0.5)."),
    (torch.tensor([1.0], dtype=torch.bfloat16), torch.tensor([1.0], dtype=torch.bfloat16), {}, ""),
])
def test_compare_says_exactly_what_differs(got, expected, kwargs, said):
    """Protects each sentence the checker can answer with, and each path to it: tuples and
    lists, bools (0-d tensors too), anything compared with ==, integer arrays, NaN and
    infinite entries, a zero expected value, an overflowing difference, bfloat16."""
    assert compare(got, expected, **{"rtol": 0.0, "atol": 0.0, **kwargs}) == said


def test_float32_results_are_named_in_the_sentence():
    """Protects the float32 diagnosis: a float64 answer whose values are all float32 numbers,
    where the reference's lie off the float32 grid, fails with its own sentence (also when
    the values are otherwise within tolerance), and is named beside a value error."""
    e = torch.linspace(0.1, 1.1, 6, dtype=T64)
    g = e.float().double()
    assert compare(g, e, rtol=1e-3, atol=0) == (
        "every value you return is a float32 number: the result was computed in float32 and "
        "converted. Keep the inputs' float64 throughout.")
    one = torch.tensor([0.1], dtype=T64)
    assert compare(one.float().double(), one, rtol=1e-3, atol=0).startswith("every value")
    why = compare(g, e, rtol=1e-12, atol=0)
    assert why.endswith("(every value you return is a float32 number: was it computed in "
                        "float32?)")
    assert compare(e, e, rtol=0, atol=0) == ""
    few = torch.tensor([0.1, 0.25, 0.5, 0.75, 1.0], dtype=T64)  # one off the grid only
    assert compare(few.float().double(), few, rtol=1e-3, atol=0) == ""
    exact = torch.tensor([0.25, 0.5, 0.75, 1.0, 2.0], dtype=T64) + 1e-17
    assert compare(exact.float().double(), exact, rtol=1e-3, atol=0) == ""


def test_float32_diagnosis_edges_and_nested_values_revealed():
    """Protects the float32 test's thresholds (four values off the float32 grid suffice; the
    distance is relative, so tiny values count) and the revealed sentence of an item."""
    four = torch.tensor([0.1, 0.2, 0.3, 0.7, 0.5], dtype=T64)  # 0.5 is on the grid
    assert compare(four.float().double(), four, rtol=1e-3, atol=0).startswith("every value")
    tiny = torch.linspace(0.1, 1.1, 6, dtype=T64) * 1e-20
    assert compare(tiny.float().double(), tiny, rtol=1e-3, atol=0).startswith("every value")
    assert compare((1.0, 2.5), (1.0, 2.0), rtol=0, atol=0) == (
        "item 1: expected 2, got 2.5 (relative error 2.5e-01; tolerance exact).")
    assert "(relative error inf; tolerance exact)" in compare(10**400, 1, rtol=0, atol=0)


def test_reports_in_full():
    """Protects every line a learner reads: case names, the reason, hints and named mistakes,
    keyword cases, the verdict's counts and wording, for each kind of check."""
    cases = [Case("small", (torch.arange(3.0),), hint="double it"),
             Case("kw", (), {"x": torch.ones(2)})]
    tripling = Mistake("tripling", "you multiplied by 3", lambda x: 3 * x)
    report = check_function(lambda x: 3 * x, reference, cases, title="Double", verbose=False,
                            mistakes=[tripling])
    why = ("values differ at {} of {} entries; first at index ({},): expected 2, got 3 (relative "
           "error 5.0e-01; tolerance rtol 1e-05, atol 1e-06). Hint: this is tripling: you "
           "multiplied by 3")
    assert str(report) == "\n".join([f"✗ small: {why.format(2, 3, 1)}",
                                     f"✗ kw: {why.format(2, 2, 0)}",
                                     "Double: 0 of 2 checks pass. Keep going."])
    assert str(check_function(reference, lambda x: 2 * x, cases, title="Double",
                              verbose=False)) == (
        "✓ small\n✓ kw\nDouble: all 2 checks pass. Well done!")
    assert str(check_value("L", 12.0, 10.0, title="Ex", hint="count again", verbose=False)) == (
        "✗ L: your value is too high (tolerance: rtol 0.1). Hint: count again\n"
        "Ex: 0 of 1 checks pass. Keep going.")
    assert str(check_value("L", 10.9, 10.0, title="Ex", verbose=False)) == (
        "✓ L\nEx: correct. Well done!")
    assert str(check_value("L", 5.0, 10.0, title="Ex", verbose=False,
                           mistakes=[Mistake("halving", "you halved", 5.0)])) == (
        "✗ L: your value is too low by a factor of 2 or more (tolerance: rtol 0.1). Hint: this "
        "is halving: you halved\nEx: 0 of 1 checks pass. Keep going.")
    assert str(check_value("L", ..., 10.0, title="Ex", verbose=False)) == (
        "✗ L: no answer yet: replace the ... with your value.\nEx: 0 of 1 checks pass. Keep "
        "going.")
    x = sp.Symbol("x")
    assert str(check_expression("e", 2 * x, x**2, title="Ex", hint="square",
                                verbose=False)).startswith("✗ e: differs from the expected ")
    assert str(check_expression("e", 2 * x, x**2, title="Ex", hint="square",
                                verbose=False)).endswith(" Hint: square\nEx: 0 of 1 checks "
                                                         "pass. Keep going.")
    assert str(check_expression("e", ..., x**2, title="Ex", verbose=False)) == (
        "✗ e: no answer yet: replace the ... with your expression.\nEx: 0 of 1 checks pass. "
        "Keep going.")
    named = check_expression("e", x, x**2, title="Ex", verbose=False,
                             mistakes=[Mistake("linear", "not squared", x)])
    assert named.lines[0].endswith("Hint: this is linear: not squared")
    plain = check_expression("e", x, x**2, title="Ex", verbose=False)
    assert plain.lines[0].startswith("✗ e: differs") and "Hint" not in plain.lines[0]
    assert check_value("L", 20.0, 10.0, title="Ex", verbose=False).lines == [
        "✗ L: your value is too high by a factor of 2 or more (tolerance: rtol 0.1)."]


def test_reports_print_once_and_add_up(capsys):
    """Protects printing (verbose by default, and a notebook's display does not print twice)
    and Report.extend (an exercise checked in parts)."""
    first = check_value("a", 1.0, 1.0, title="T")
    assert capsys.readouterr().out == "✓ a\nT: correct. Well done!\n"
    first._ipython_display_()
    assert capsys.readouterr().out == ""
    quiet = check_value("b", 3.0, 1.0, title="T", verbose=False)
    assert capsys.readouterr().out == ""
    quiet._ipython_display_()
    assert capsys.readouterr().out.endswith("T: 0 of 1 checks pass. Keep going.\n")
    both = check_value("a", 1.0, 1.0, title="T", verbose=False).extend(quiet)
    assert (both.n_passed, both.n_cases, len(both.lines)) == (1, 2, 2)
    assert both.lines[0] == "✓ a" and both.lines[1].startswith("✗ b: ")
    assert str(check_expression("e", sp.Symbol("x"), sp.Symbol("x"), title="T")) == (
        "✓ e\nT: correct. Well done!")
    assert capsys.readouterr().out == "✓ e\nT: correct. Well done!\n"


def test_a_function_in_the_graders_kernel_gets_each_case_and_the_rules():
    """Protects the grader's path: a learner's function that runs in another kernel (it has
    ``_sseq_run_case``) receives each case's arguments, the time limit, the line budget, the
    book functions it must not call and the argument names, and its outcome is judged."""
    from sseq.exercises_guard import Outcome

    def helper(x):
        return x

    calls = []

    class Remote:
        __name__ = __qualname__ = "learner"

        def __call__(self, *args, **kwargs):
            raise AssertionError("a remote function is not called in the checker's kernel")

        def _sseq_run_case(self, args, kwargs, *, time_limit, max_lines, forbidden, arg_names):
            calls.append((args, kwargs, time_limit, max_lines, forbidden, arg_names))
            x = args[0] if args else kwargs["x"]
            return Outcome("returned", 2 * x)

    cases = [Case("pos", (torch.arange(3.0),), max_lines=7), Case("kw", (), {"x": torch.ones(2)})]
    report = check_function(Remote(), reference, cases, title="Double", verbose=False,
                            time_limit=2.5, forbid=[helper])
    assert report and report.n_cases == 2
    names = [f"{__name__}.reference",
             f"{__name__}.test_a_function_in_the_graders_kernel_gets_each_case_and_the_rules"
             ".<locals>.helper"]
    assert [(c[1], c[2], c[3], c[4], c[5]) for c in calls] == [
        ({}, 2.5, 7, names, ("x",)), ({"x": cases[1].kwargs["x"]}, 2.5, None, names, ("x",))]
    assert calls[0][0] is cases[0].args


# --- the guard's pieces ------------------------------------------------------------------------
def test_qualified_name_of_functions_and_odd_objects():
    from sseq.exercises_guard import qualified_name

    class NoNames:
        __module__ = ""

        def __repr__(self):
            return "<odd>"

    def inner():
        pass

    assert qualified_name(inner) == (f"{__name__}.test_qualified_name_of_functions_and_odd_objects"
                                     ".<locals>.inner")
    assert qualified_name(torch.exp) == "torch._VariableFunctionsClass.exp"  # as PyTorch says
    assert qualified_name(NoNames()) == "<odd>"
    named = NoNames()
    named.__name__ = "only_name"
    assert qualified_name(named) == "only_name"
    named.__module__ = "pkg"
    assert qualified_name(named) == "pkg.only_name"


@pytest.mark.parametrize(("a", "b", "same"), [
    (torch.tensor([1.0, float("nan")]), torch.tensor([1.0, float("nan")]), True),
    (torch.tensor([1.0, 2.0]), torch.tensor([1.0, 3.0]), False),
    (torch.tensor([1.0, float("nan")]), torch.tensor([float("nan"), 1.0]), False),
    (torch.tensor([1.0]), torch.tensor([1.0], dtype=torch.float64), False),
    (torch.tensor([1.0]), torch.tensor([[1.0]]), False),
    (torch.tensor([1.0]), np.array([1.0]), False), (np.array([1.0]), torch.tensor([1.0]), False),
    (torch.tensor([1.0]), [1.0], False), (1.0, torch.tensor(1.0), False),
    (torch.tensor([1 + 1j]).conj(), torch.tensor([1 - 1j]), True),
    (np.array([np.nan]), np.array([np.nan]), True), (np.array([1]), np.array([1.0]), False),
    ([1, (2, 3)], [1, (2, 3)], True), ([1, 2], [1, 2, 3], False),
    ({"a": 1}, {"a": 1}, True), ({"a": 1}, {"b": 1}, False), ({"a": 1}, {"a": 2}, False),
    (float("nan"), float("nan"), True), (1.0, 2.0, False),
])
def test_same_value_notices_any_change(a, b, same):
    """Protects the in-place change detector: exact equality, NaN equal to NaN, types, shapes
    and dtypes compared, containers item by item."""
    from sseq.exercises_guard import same_value

    assert same_value(a, b) is same


def test_the_watch_sees_forbidden_functions_and_counts_lines():
    """Protects the watch: a forbidden Python function (or one wrapped by a decorator) and a
    forbidden C function are named when called; the line budget stops a call that runs more
    lines than allowed, and not one that runs exactly as many."""
    import functools

    from sseq.exercises_guard import qualified_name, run_learner

    def book(x):
        return x

    @functools.wraps(book)
    def wrapped(x):
        return book(x)

    out = run_learner(lambda x: wrapped(x), (1,), {}, forbidden=[wrapped])
    assert out.reference == f"{__name__}." + book.__qualname__
    out = run_learner(lambda x: torch.exp(x), (torch.ones(1),), {}, forbidden=[torch.exp])
    assert out.reference == qualified_name(torch.exp) and out.kind == "returned"
    cached = functools.lru_cache(book)  # a C wrapper: the function inside is watched
    out = run_learner(lambda x: cached.__wrapped__(x), (1,), {}, forbidden=[cached])
    assert out.reference == qualified_name(cached)
    out = run_learner(lambda x: x, (1,), {}, forbidden=[torch.exp, book])
    assert out.reference == "" and out.value == 1

    def three_lines(x):
        y = x
        y = y + 1
        return y

    assert run_learner(three_lines, (1,), {}, max_lines=3).kind == "returned"
    looped = run_learner(three_lines, (1,), {}, max_lines=2)
    assert looped.kind == "looped" and looped.lines == 3


def test_an_outer_handler_is_called_with_the_signal_and_frame():
    """Protects the hand-over of an outer SIGALRM: its handler gets the signal and the frame."""
    from sseq.exercises_guard import _deliver

    got = []
    frame = sys._getframe()
    _deliver(lambda signum, f: got.append((signum, f)), signal.SIGALRM, frame)
    assert got == [(signal.SIGALRM, frame)]
    _deliver(signal.SIG_IGN, signal.SIGALRM, frame)  # ignored: nothing happens


# --- derivations: the sympy side ---------------------------------------------------------------
X, N, Y = sp.Symbol("x", positive=True), sp.Symbol("n", integer=True), sp.Symbol("y")
SYMS = {"x": X, "n": N, "y": Y}


@pytest.mark.parametrize(("got", "expected", "domain", "said"), [
    (sp.Matrix([X]), X, {}, "expected a single expression, got a matrix."),
    (X, sp.Matrix([X]), {}, "expected a matrix, got a single expression."),
    (sp.Matrix([[X, X]]), sp.Matrix([X, X]), {}, "shape differs: expected 2×1, got 1×2."),
    (X + Y, X, {}, "contains y, which the answer does not depend on; eliminate it."),
    (2 * X, X**2, {}, "differs from the expected result (at x = 1.704 yours is 3.408)."),
    (sp.Integer(3), X, {}, "differs from the expected result (at x = 1.704 yours is 3)."),
    (sp.I * X, X, {}, "differs from the expected result (at x = 1.704 yours is 0+1.704j)."),
    (2 * N, N, {N: range(10, 12)}, "differs from the expected result (at n = 11 yours is 22)."),
    (sp.Integer(2), sp.Integer(3), {}, "differs from the expected result (yours is 2)."),
    (1 / (X - 1), X, {X: (1.0, 1.0)},
     "differs from the expected result (at x = 1 yours is not a finite number)."),
    (sp.Matrix([X, 1 / (X - X)]), sp.Matrix([X, X]), {},
     "differs from the expected result (at x = 1.704 yours is not a finite number)."),
    (X / 2 + sp.I * sp.Rational(15, 10**13), X, {},
     "differs from the expected result (at x = 1.704 yours is 0.852+1.5e-12j)."),
    (X + N, X + 2 * N, {}, "differs from the expected result (at n = 4, x = 1.54 yours is 5.54)."),
    (sp.Integer(1) / 0, sp.Integer(3), {},
     "differs from the expected result (yours is not finite)."),
    (X + sp.Rational(19, 10**13), X, {},
     "differs from the expected result (at x = 1.704 yours is 1.704)."),  # 1.9e-12 > 1e-12·|x|
    (X + sp.Rational(9, 10**13), X, {}, ""),  # within 1e-12·max(1, |x|)
    (X, X, {X: (5.0, 6.0)}, ""), (sp.Float(0.5) * X, X / 2, {}, ""),
    (sp.Symbol("x") * 2, 2 * X, {}, ""),
])
def test_derivations_are_compared_numerically_with_a_reason(got, expected, domain, said):
    """Protects the numeric comparison of derivations and each sentence it answers with: the
    kind and shape, a foreign symbol, the point where the values differ (integers, decimals,
    complex values, no symbol at all, non-finite values), floats read as decimals, the
    learner's symbols matched to the exercise's by name."""
    from sseq.exercises_sympy import equivalent

    assert equivalent(got, expected, symbols=SYMS, domain=domain, simplify=False) == (
        not said, said)


def test_derivations_simplify_first_and_points_cover_the_domain():
    """Protects the symbolic first pass (an identity numbers could only approximate) and where
    points are drawn: 1…6 for integers, [0.1, 2] for positive symbols, [−2, 2] otherwise, the
    exercise's range or interval when it gives one, in steps of 0.001."""
    import random

    from sseq.exercises_sympy import _sample, equivalent

    assert equivalent(sp.sin(X)**2 + sp.cos(X)**2, sp.Integer(1), symbols=SYMS,
                      domain={}) == (True, "")
    rng = random.Random(1)

    def draws(symbol, domain=None):
        return [_sample(symbol, domain or {}, rng) for _ in range(400)]

    assert set(draws(N)) == {1, 2, 3, 4, 5, 6}
    assert set(draws(N, {N: range(7, 9)})) == {7, 8}
    for symbol, domain, low, high in ((X, None, 0.1, 2.0), (Y, None, -2.0, 2.0),
                                      (Y, {Y: (5.0, 6.0)}, 5.0, 6.0)):
        values = draws(symbol, domain)
        assert all(isinstance(v, sp.Rational) and (1000 * v).is_integer for v in values)
        assert low <= min(values) < low + 0.05 and high - 0.05 < max(values) <= high


def test_answers_become_sympy_objects():
    """Protects reading an answer: a list as a row or a column like the expected matrix, a
    list of 1×1 matrices, a 0-d tensor as its number; a string is refused (sympify would run
    it as code)."""
    from sseq.exercises_sympy import to_sympy

    assert to_sympy([1, X], like=sp.Matrix([[1, 2]])) == sp.Matrix([[1, X]])
    assert to_sympy((1, X), like=sp.Matrix([1, 2])) == sp.Matrix([1, X])
    assert to_sympy([sp.Matrix([1]), sp.Matrix([2])], like=sp.Matrix([1, 2])) == sp.Matrix([1, 2])
    assert to_sympy(torch.tensor(2.5)) == sp.Float(2.5)
    assert to_sympy(np.float64(0.5)) == sp.Float(0.5)
    with pytest.raises(TypeError, match="^a string; build the expression from the symbols"):
        to_sympy("x")


def test_values_that_are_not_finite_are_refused():
    from sseq.exercises_sympy import _value

    for expr in (X * sp.nan, sp.zoo * X, sp.oo * X, -sp.oo * X):
        assert _value(expr, {X: 1}) is None, expr
    assert _value(sp.Matrix([X, 2 * X]), {X: 1}) == [1, 2]


@pytest.mark.timeout(60, method="thread")
def test_derivation_reports_for_lists_strings_and_slow_answers():
    """Protects check_expression's other sentences: a list answer read like the expected
    matrix (also when matching mistakes), a string refused, an answer too slow to decide."""
    x = sp.Symbol("x")
    one = Mistake("one", "the second entry is 1", sp.Matrix([x, 1]))
    report = check_expression("m", [x, 1], sp.Matrix([x, 2]), title="T", verbose=False,
                              mistakes=[one])
    assert report.lines[0].endswith("Hint: this is one: the second entry is 1")
    assert check_expression("m", [x, 2], sp.Matrix([x, 2]), title="T", verbose=False)
    assert check_expression("e", "x**2", x**2, title="T", verbose=False).lines == [
        "✗ e: could not be read as a sympy expression (a string; build the expression from "
        "the symbols instead)."]
    hard = sum(sp.sin(k * x)**2 + sp.cos(k * x)**2 for k in range(1, 40))
    slow = check_expression("e", hard, sp.Integer(39), title="T", verbose=False,
                            time_limit=1e-4)
    assert slow.lines == ["✗ e: could not be decided within 0.0001 s; simplify your expression "
                          "(sympy.simplify) and run the cell again."]


def test_inputs_stay_untouched_by_the_reference_and_the_mistakes():
    """Protects the copies: the book's function and the mistakes run on deep copies of the
    case's arguments, positional and keyword, so an in-place reference changes no case."""
    x, y = torch.arange(3.0), torch.ones(2)
    cases = [Case("pos", ([x],)), Case("kw", (), {"v": [y]})]

    def ref(v):
        v[0].mul_(2)
        return v[0].clone()

    def wrong(v):
        v[0].add_(100)
        return v[0].clone()

    report = check_function(lambda v: v[0] * 3, ref, cases, title="T", verbose=False,
                            mistakes=[Mistake("adding", "added", wrong)])
    assert not report
    assert torch.equal(x, torch.arange(3.0)) and torch.equal(y, torch.ones(2))


def test_the_second_of_two_mistakes_is_named_too():
    first = Mistake("halving", "halved", lambda x: x / 2)
    second = Mistake("tripling", "tripled", lambda x: 3 * x)
    report = run(lambda x: 3 * x, mistakes=[first, second])
    assert report.lines[0].endswith("Hint: this is tripling: tripled")
    failing = Mistake("broken", "does not apply here", lambda x: x[99])  # raises IndexError
    report = run(lambda x: 3 * x, mistakes=[failing, second])
    assert report.lines[0].endswith("Hint: this is tripling: tripled")
    value = check_value("v", 5.2, 10.0, title="T", verbose=False,
                        mistakes=[Mistake("a", "a", 1.0), Mistake("half", "halved", 5.0)])
    assert value.lines[0].endswith("Hint: this is half: halved")  # within rtol 0.1 of 5


def test_unanswered_checks_print_and_reports_add_passes(capsys):
    check_value("a", ..., 1.0, title="T")
    assert capsys.readouterr().out.startswith("✗ a: no answer yet")
    check_expression("e", ..., sp.Symbol("x"), title="T")
    assert capsys.readouterr().out.startswith("✗ e: no answer yet")
    both = check_value("a", 1.0, 1.0, title="T", verbose=False).extend(
        check_value("b", 2.0, 2.0, title="T", verbose=False))
    assert (both.n_passed, both.n_cases) == (2, 2) and both


def test_a_timeout_in_the_graders_kernel_names_its_own_limit():
    """Protects the time in a remote timeout: the limit the kernel applied (a case timeout
    may be shorter than the checker's)."""
    from sseq.exercises_guard import Outcome

    class Remote:
        __name__ = __qualname__ = "learner"

        def __call__(self, *args):
            raise AssertionError("not called here")

        def _sseq_run_case(self, args, kwargs, **rules):
            return Outcome("timeout", error="5")

    report = check_function(Remote(), reference, CASES, title="T", verbose=False)
    assert report.lines[0] == ("✗ small: still running after 5 s, so it was stopped (an "
                               "endless loop?).")


def test_derivations_need_every_point_and_skip_undefined_ones():
    """Protects the numeric pass: all 12 points must agree (here only the 12th differs), points
    where the expected expression is undefined are skipped (not the end of the search), an
    answer never comparable is refused, a symbolic difference must be 0, and all foreign
    symbols are named; matrices show every entry, a tiny imaginary part is dropped."""
    from sseq.exercises_sympy import equivalent

    def eq(got, expected, domain=None, simplify=True):
        return equivalent(got, expected, symbols=SYMS, domain=domain or {}, simplify=simplify)

    bump = sp.Piecewise((1, (X > 1.05) & (X < 1.065)), (0, True))  # only at x = 1.059
    assert eq(X + bump, X, simplify=False) == (
        False, "differs from the expected result (at x = 1.059 yours is 2.059).")
    assert eq(2 / (N - 4), 1 / (N - 4), {N: range(3, 6)}, simplify=False) == (
        False, "differs from the expected result (at n = 3 yours is -2).")
    assert eq(X, 1 / (X - X), simplify=False) == (
        False, "could not be evaluated at points of the exercise's domain.")
    assert eq(-X, X)[0] is False and eq(X + 1, X)[0] is False
    z = sp.Symbol("z")
    assert eq(X + Y + z, X)[1] == ("contains y, z, which the answer does not depend on; "
                                    "eliminate it.")
    assert eq(sp.Matrix([2 * X, X]), sp.Matrix([X, X]), simplify=False)[1] == (
        "differs from the expected result (at x = 1.704 yours is 3.408, 1.704).")
    assert eq(2 * X + sp.I * sp.Rational(15, 10**13), X, simplify=False)[1] == (
        "differs from the expected result (at x = 1.704 yours is 3.408).")


def test_reading_answers_refuses_what_is_not_sympy():
    """Protects strict reading: an object is not parsed from its text, an array of several
    values is not a number; 0-d arrays are; nonnegative symbols are sampled from 0.1."""
    import random

    from sseq.exercises_sympy import _sample, to_sympy

    class LooksLikeAnExpression:
        def __str__(self):
            return "x + 1"

    with pytest.raises(sp.SympifyError):
        to_sympy(LooksLikeAnExpression())
    with pytest.raises(sp.SympifyError):
        to_sympy(np.array([1.0, 2.0]))
    assert to_sympy(np.array(2.5)) == sp.Float(2.5)
    rng = random.Random(0)
    z = sp.Symbol("z", nonnegative=True)
    assert min(_sample(z, {}, rng) for _ in range(200)) >= 0.1


def test_an_answer_that_cannot_even_be_described_is_reported():
    """Protects the last resort: an answer whose repr raises is "could not be compared", with
    the error, in both checks (never a crash of the checker)."""
    class BadStr(str):
        def __repr__(self):
            raise RuntimeError("no repr")

    assert check_value("v", BadStr("a"), "b", title="T", verbose=False).lines == [
        "✗ v: could not be compared (RuntimeError: no repr)."]
    assert check_function(lambda x: BadStr("a"), lambda x: "b", [Case("c", (1,))], title="T",
                          verbose=False).lines == [
        "✗ c: could not be compared (RuntimeError: no repr)."]
    odd, half = Mistake("odd", "odd", BadStr("x")), Mistake("half", "halved", 5.0)
    assert check_value("v", 5.2, 10.0, title="T", verbose=False, mistakes=[odd, half]).lines[
        0].endswith("Hint: this is half: halved")  # the odd mistake is skipped


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="POSIX timers")
@pytest.mark.timeout(20, method="thread")
def test_a_periodic_outer_timer_keeps_ticking_through_the_checker():
    """Protects an outer periodic SIGALRM timer (a notebook's progress ticker): inside the
    checker's time limit its handler still gets every tick, with the signal and the frame,
    neither lost after the first tick nor fired in a burst, and it keeps its period after."""
    ticks = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: ticks.append((signum, frame)))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05, 0.05)

        def slow(x):
            time.sleep(0.5)
            return 2 * x

        assert check_function(slow, reference, CASES[:1], title="T", verbose=False,
                              time_limit=5.0)
        assert 3 <= len(ticks) <= 14, len(ticks)
        assert all(signum == signal.SIGALRM and frame is not None for signum, frame in ticks)
        assert signal.getitimer(signal.ITIMER_REAL)[1] == pytest.approx(0.05)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
