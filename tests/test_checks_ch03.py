"""The Chapter 3 checkers: a correct answer passes, each kind of wrong one is caught."""

from __future__ import annotations

import math

import numpy as np
import sympy as sp
import torch

from sseq.checks import ch03

# --- Exercise 3.1 ------------------------------------------------------------------------------


def legs_right(N):
    n = torch.arange(N, dtype=torch.float64)
    r = torch.sqrt(2 * n + 1)
    A = -torch.tril(torch.outer(r, r), -1) - torch.diag(n + 1)
    return A, r


def legs_positive(N):  # the paper's sign: A positive
    A, B = legs_right(N)
    return -A, B


def legs_column_B(N):
    A, B = legs_right(N)
    return A, B[:, None]


def legs_float32(N):
    A, B = legs_right(N)
    return A.float(), B.float()


def legs_diagonal_n(N):  # -n instead of -(n+1) on the diagonal
    A, B = legs_right(N)
    return A + torch.eye(N, dtype=torch.float64), B


def test_legs_right_answer_passes(capsys):
    assert ch03.check_legs(legs_right)
    assert "Exercise 3.1 (LegS's matrices): all 5 checks pass" in capsys.readouterr().out


def test_legs_right_answer_passes_graded_cases_too():
    for seed in (1, 2):
        assert ch03.check_legs(legs_right, verbose=False, seed=seed)
    assert [c.args for c in ch03._legs_cases(seed=1)] != [c.args for c in ch03._legs_cases()]


def test_legs_tolerance_just_inside_and_just_outside():
    def scaled(factor):
        return lambda N: tuple(m * factor for m in legs_right(N))

    assert ch03.check_legs(scaled(1 + 3e-11), verbose=False)
    assert not ch03.check_legs(scaled(1 + 3e-10), verbose=False)


def test_legs_mistakes_are_caught_with_their_reason():
    report = ch03.check_legs(legs_positive, verbose=False)
    assert not report and report.n_passed == 0
    assert report.lines[0].startswith("✗ N = 1: item 0: values differ")
    assert "Hint: this is the paper's sign convention" in report.lines[0]
    assert "-n on the diagonal" in str(ch03.check_legs(legs_diagonal_n, verbose=False))
    transposed = ch03.check_legs(lambda N: (legs_right(N)[0].T, legs_right(N)[1]),
                                 verbose=False)
    assert "A transposed" in str(transposed)
    from sseq import hippo

    assert "calls sseq.hippo.transition" in str(
        ch03.check_legs(lambda N: hippo.transition("legs", N), verbose=False))
    report = ch03.check_legs(legs_column_B, verbose=False)
    assert "item 1: shape differs: expected (1,), got (1, 1)" in report.lines[0]
    report = ch03.check_legs(legs_float32, verbose=False)
    assert "dtype differs: expected torch.float64, got torch.float32" in report.lines[0]
    report = ch03.check_legs(lambda N: tuple(m.double() for m in legs_float32(N)),
                             verbose=False)
    assert not report and "computed in float32" in str(report)
    report = ch03.check_legs(legs_diagonal_n, verbose=False)
    assert not report and "values differ" in report.lines[2]


def test_legs_unfinished_answer_is_reported(capsys):
    def todo(N):
        raise NotImplementedError

    assert not ch03.check_legs(todo)
    assert "✗ N = 1: not implemented yet." in capsys.readouterr().out


# --- Exercise 3.2 ------------------------------------------------------------------------------


def derived_row():
    z = ch03.symbols()
    f = (z + 1) * sp.diff(sp.legendre(3, z), z)
    a = [sp.Rational(2 * k + 1, 2) * sp.integrate(f * sp.legendre(k, z), (z, -1, 1))
         for k in range(4)]
    return [-sp.KroneckerDelta(3, k) - sp.sqrt(7) * a[k] / sp.sqrt(2 * k + 1) for k in range(4)]


def test_derived_row_passes_as_list_or_matrix():
    assert ch03.check_legs_row(derived_row(), verbose=False)
    assert ch03.check_legs_row(sp.Matrix([derived_row()]), verbose=False)


def test_wrong_rows_are_caught():
    wrong = derived_row()
    wrong[3] = -3  # forgot the -δ_nk from the 1/t in front of the integral
    report = ch03.check_legs_row(wrong, verbose=False)
    assert not report and "differs from the expected result (yours is" in report.lines[0]
    assert "Hint: this is the row without -δ_nk" in report.lines[0]
    assert "yours is -2.64575, -4.58258, -5.91608, -3)" in report.lines[0]  # the learner's own
    column = ch03.check_legs_row(sp.Matrix(derived_row()), verbose=False)  # (4, 1), not (1, 4)
    assert not column and "shape differs: expected 1×4, got 4×1" in column.lines[0]
    floats = [float(v) for v in derived_row()]  # a numeric answer, exact to the last digit
    assert ch03.check_legs_row(floats, verbose=False)
    assert "no answer yet" in ch03.check_legs_row(..., verbose=False).lines[0]


# --- Exercise 3.3 ------------------------------------------------------------------------------


def reconstruct_right(c, t, x):
    n = np.arange(len(c))
    coefficients = c.numpy() * np.sqrt(2 * n + 1)
    return torch.from_numpy(np.polynomial.legendre.legval(2 * x.numpy() / t - 1, coefficients))


def reconstruct_no_scale(c, t, x):  # uses z = 2x - 1, right only at t = 1
    return reconstruct_right(c, 1.0, x)


def reconstruct_unnormalized(c, t, x):  # forgets sqrt(2n+1)
    return torch.from_numpy(np.polynomial.legendre.legval(2 * x.numpy() / t - 1, c.numpy()))


def test_reconstruct_right_answer_passes():
    assert ch03.check_reconstruct(reconstruct_right, verbose=False)
    for seed in (1, 2):
        assert ch03.check_reconstruct(reconstruct_right, verbose=False, seed=seed)


def test_reconstruct_tolerance_and_reference():
    assert ch03.check_reconstruct(lambda c, t, x: reconstruct_right(c, t, x) * (1 + 3e-9),
                                  verbose=False)
    assert not ch03.check_reconstruct(lambda c, t, x: reconstruct_right(c, t, x) * (1 + 3e-8),
                                      verbose=False)
    from sseq import hippo

    report = ch03.check_reconstruct(lambda c, t, x: c @ hippo.basis("legs", len(c), t=t, x=x).T,
                                    verbose=False)
    assert not report and "calls sseq.hippo.basis" in str(report)


def test_reconstruct_mistakes_are_caught_with_hints():
    report = ch03.check_reconstruct(reconstruct_no_scale, verbose=False)
    assert not report and report.lines[:2] == ["✓ a constant, N = 1", "✓ N = 3 at t = 1"]
    assert report.lines[2].startswith("✗ N = 6 at t = 2.5: values differ")
    assert "Hint: this is z = 2x - 1: the Legendre variable rescales x by t" in report.lines[2]
    report = ch03.check_reconstruct(reconstruct_unnormalized, verbose=False)
    assert report.lines[0] == "✓ a constant, N = 1" and "sqrt(2n+1)" in report.lines[1]
    assert "the Legendre polynomials unnormalized" in report.lines[1]
    report = ch03.check_reconstruct(lambda c, t, x: reconstruct_right(c, t, x).float(),
                                    verbose=False)
    assert "dtype differs" in report.lines[0]


# --- Exercise 3.4 ------------------------------------------------------------------------------


def test_error_ratio_is_close_to_sqrt_two():
    # The theory (coefficients of a jump decay like 1/n) predicts sqrt(2); measured 1.42.
    assert abs(ch03.error_ratio() - math.sqrt(2)) < 0.05


def test_prediction_and_measurement_are_both_required(capsys):
    assert ch03.check_error_ratio(math.sqrt(2), ch03.error_ratio())
    assert "all 2 checks pass" in capsys.readouterr().out
    report = ch03.check_error_ratio(2.0, ch03.error_ratio(), verbose=False)
    assert not report and report.n_cases == 2 and report.n_passed == 1
    assert report.lines[0].startswith("✗ your prediction: your value is too high")
    assert "1.42" not in report.lines[0]
    assert "the ratio for an error falling like 1/N" in report.lines[0]
    report = ch03.check_error_ratio(1.41, 1.2, verbose=False)
    assert report.n_passed == 1 and report.lines[1].startswith("✗ your measurement")
    assert "upside down" in str(ch03.check_error_ratio(1.41, 1 / ch03.error_ratio(),
                                                        verbose=False))
    prediction_only = ch03.check_error_ratio(math.sqrt(2), verbose=False)
    assert not prediction_only and prediction_only.lines[1].startswith(
        "✗ your measurement: not measured yet")
    stub = ch03.check_error_ratio(..., None, verbose=False)
    assert stub.unanswered and stub.n_cases == 2
