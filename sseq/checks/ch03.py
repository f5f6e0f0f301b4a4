"""Checkers for Chapter 3, "HiPPO: memory as online function approximation"."""

from __future__ import annotations

import sympy as sp
import torch

from sseq import hippo
from sseq.exercises import Case, Report, check_expression, check_function, check_value

__all__ = ["check_error_ratio", "check_legs", "check_legs_row", "check_reconstruct",
           "error_ratio", "symbols"]


# --- Exercise 3.1: build LegS from its formula ------------------------------------------------


def check_legs(fn, *, verbose: bool = True) -> Report:
    """Exercise 3.1: ``fn(N) -> (A, B)``, LegS's matrices as float64 tensors (n, n) and (n,)."""
    sign = "the sign is folded into A: the diagonal is -(n+1), negative."
    cases = [
        Case("N = 1", (1,), hint=sign),
        Case("N = 2", (2,), hint="below the diagonal A_nk = -sqrt(2n+1) sqrt(2k+1)."),
        Case("N = 3", (3,), hint="above the diagonal A is zero: torch.tril keeps the rest."),
        Case("N = 5", (5,), hint="B_n = sqrt(2n+1), a vector of shape (N,)."),
        Case("N = 8", (8,), hint=sign),
    ]
    return check_function(fn, hippo.legs, cases, title="Exercise 3.1 (LegS's matrices)",
                          rtol=1e-10, atol=1e-12, verbose=verbose)


# --- Exercise 3.2: derive a row of A with sympy ------------------------------------------------


def symbols():
    """The sympy symbol of Exercise 3.2: z = 2x/t - 1, the Legendre variable on [-1, 1]."""
    return sp.Symbol("z")


def check_legs_row(row, *, verbose: bool = True) -> Report:
    """Exercise 3.2: the row n = 3 of LegS's A, derived exactly: [A_30, A_31, A_32, A_33]."""
    expected = sp.Matrix([[-sp.sqrt(7), -sp.sqrt(21), -sp.sqrt(35), -4]])
    if isinstance(row, (list, tuple)):
        row = sp.Matrix([list(row)])
    return check_expression("row n = 3 of A", row, expected, title="Exercise 3.2 (derive)",
                            hint="A_3k = -δ_3k - sqrt(7) a_3k / sqrt(2k+1), where a_3k is the "
                                 "coefficient of P_k in (z+1) P_3'(z).", verbose=verbose)


# --- Exercise 3.3: reconstruct the past from the coefficients ----------------------------------


def _reconstruct_reference(c, t, x):
    return hippo.reconstruct(c, "legs", t=t, x=x)


def _reconstruct_cases() -> list[Case]:
    g = torch.Generator().manual_seed(3)

    def coefficients(N):
        return torch.randn(N, generator=g, dtype=torch.float64)

    def times(t, m=7):
        return torch.linspace(0.0, t, m, dtype=torch.float64)

    return [
        Case("a constant, N = 1", (torch.tensor([0.7], dtype=torch.float64), 1.0, times(1.0)),
             hint="p_0 = 1: the reconstruction is c_0 everywhere."),
        Case("N = 3 at t = 1", (coefficients(3), 1.0, times(1.0)),
             hint="p_n(x) = sqrt(2n+1) P_n(2x/t - 1): do not forget the sqrt(2n+1)."),
        Case("N = 6 at t = 2.5", (coefficients(6), 2.5, times(2.5, 11)),
             hint="the Legendre variable is z = 2x/t - 1: rescale x by t, not by 1."),
        Case("N = 40 at t = 3 (many coefficients)", (coefficients(40), 3.0, times(3.0, 25)),
             hint="compute P_n(z) by the three-term recurrence "
                  "(n+1) P_{n+1} = (2n+1) z P_n - n P_{n-1}, or with numpy's legval."),
    ]


def check_reconstruct(fn, *, verbose: bool = True) -> Report:
    """Exercise 3.3: ``fn(c, t, x)`` = Σ_n c_n sqrt(2n+1) P_n(2x/t - 1), float64, shape (m,)."""
    return check_function(fn, _reconstruct_reference, _reconstruct_cases(),
                          title="Exercise 3.3 (reconstruct the past)", rtol=1e-8, atol=1e-10,
                          verbose=verbose)


# --- Exercise 3.4: predict, then measure how the error scales with N ---------------------------


def error_ratio(signal_name: str = "steps", N: int = 32, L: int = 1000) -> float:
    """RMS error of LegS's reconstruction at t = 1 with N coefficients, over that with 2N.

    One run with 2N coefficients gives both: LegS is nested (its first N coefficients
    are those of the run with N).
    """
    x = torch.arange(1, L + 1, dtype=torch.float64) / L
    u = hippo.signal(signal_name, x)
    c = hippo.project(u, "legs", 2 * N)[-1]  # (2N,)
    rmse = [hippo.reconstruction_error(c[:n], u, "legs", t=1.0, x=x) for n in (N, 2 * N)]
    return rmse[0] / rmse[1]


def check_error_ratio(prediction, measured=None, *, verbose: bool = True) -> Report:
    """Exercise 3.4: by what factor the error on the "steps" signal shrinks when N = 32 doubles.

    Checks the prediction against the book's measurement (within 10 %) and, when given,
    the learner's own measurement (within 2 %).
    """
    title = "Exercise 3.4 (predict, then measure)"
    reference = error_ratio()
    report = Report(title)
    parts = [check_value("your prediction", prediction, reference, rtol=0.1, title=title,
                         hint="a jump makes the n-th coefficient shrink like 1/n; the squared "
                              "error is the sum of the squares of the coefficients left out.",
                         verbose=False)]
    if measured is not None:
        parts.append(check_value("your measurement", measured, reference, rtol=0.02, title=title,
                                 hint="RMS error with N = 32 divided by RMS error with N = 64, "
                                      "on the 'steps' signal sampled at L = 1000 points.",
                                 verbose=False))
    for part in parts:
        report.lines += part.lines
        report.n_passed += part.n_passed
        report.n_cases += part.n_cases
    return report.show() if verbose else report
