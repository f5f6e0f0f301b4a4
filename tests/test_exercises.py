"""The checker framework: a right answer passes, each kind of wrong answer is caught and named."""

from __future__ import annotations

import time

import numpy as np
import pytest
import sympy as sp
import torch

from sseq.exercises import Case, check_expression, check_function, check_value, compare


def reference(x):
    return 2 * x


CASES = [Case("small", (torch.arange(3.0),)), Case("matrix", (torch.ones(2, 2),), hint="double it")]


def run(fn, **kwargs):
    return check_function(fn, reference, CASES, title="Double", verbose=False, **kwargs)


def test_a_correct_answer_passes_every_case():
    report = run(lambda x: x + x)
    assert report and report.n_passed == 2
    assert str(report).splitlines() == [
        "✓ small", "✓ matrix", "Double: all 2 checks pass. Well done!"]


@pytest.mark.parametrize(("learner", "message"), [
    (lambda x: x * 3, "values differ at"),
    (lambda x: (2 * x).reshape(-1, 1), "shape differs: expected (3,), got (3, 1)"),
    (lambda x: (2 * x).double(), "dtype differs: expected torch.float32, got torch.float64"),
    (lambda x: (2 * x).numpy(),
     "expected a tensor of shape (3,) and dtype torch.float32, got an array"),
    (lambda x: None, "got NoneType"),
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


def test_an_endless_loop_is_stopped_by_the_time_limit():
    def forever(x):
        while True:
            time.sleep(0.01)

    start = time.perf_counter()
    report = run(forever, time_limit=0.2)
    assert time.perf_counter() - start < 2.0
    assert "still running after 0.2 s" in report.lines[0]


def test_value_mismatch_names_the_first_differing_entry():
    got, expected = torch.tensor([1.0, 2.0, 5.0]), torch.tensor([1.0, 2.0, 3.0])
    why = compare(got, expected, rtol=1e-5, atol=1e-6)
    assert why == "values differ at 1 of 3 entries; first at index (2,): expected 3, got 5."


def test_compare_handles_tuples_and_numbers():
    assert compare((1.0, np.ones(2)), (1.0, np.ones(2)), rtol=0, atol=0) == ""
    assert compare((1.0,), (1.0, 2.0), rtol=0, atol=0).startswith("expected a tuple of 2 items")
    assert compare("a", 1.0, rtol=0, atol=0) == "expected a number, got str 'a'."


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
    assert "no answer yet" in report.lines[0]


def test_check_expression_is_symbolic():
    lam, k = sp.symbols("lambda k", positive=True)
    expected = lam ** (2 * k) * (1 - lam**2)
    assert check_expression("R2", lam ** (2 * k) - lam ** (2 * k + 2), expected, title="Derive",
                            verbose=False)
    wrong = check_expression("R2", lam ** (2 * k), expected, title="Derive", verbose=False)
    assert "differs from the expected result by" in wrong.lines[0]
    unanswered = check_expression("R2", ..., expected, title="D", verbose=False)
    assert "no answer yet" in unanswered.lines[0]
