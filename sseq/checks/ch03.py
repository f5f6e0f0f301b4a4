"""Checkers for Chapter 3, "HiPPO: memory as online function approximation".

Each checker takes ``seed=`` (another draw of the hidden cases, for grading) or ``cases=``
(an instructor's own) where its cases are random; the book's cases are the default.
"""

from __future__ import annotations

import random

import numpy as np
import sympy as sp
import torch

from sseq import hippo
from sseq.exercises import (
    Case,
    Mistake,
    Report,
    active_seed,
    case_generator,
    check_expression,
    check_function,
    check_value,
)

__all__ = ["check_error_ratio", "check_legs", "check_legs_row", "check_reconstruct",
           "error_ratio", "symbols"]


# --- Exercise 3.1: build LegS from its formula --------------------------------------------------


def _legs_cases(seed: int | None = None) -> list[Case]:
    sign = "the sign is folded into A: the diagonal is -(n+1), negative."
    hints = [sign, "below the diagonal A_nk = -sqrt(2n+1) sqrt(2k+1).",
             "above the diagonal A is zero: torch.tril keeps the rest.",
             "B_n = sqrt(2n+1), a vector of shape (N,).", sign]
    sizes = [1, 2, 3, 5, 8]
    if active_seed(seed) is not None:
        sizes = [1, *sorted(random.Random(active_seed(seed)).sample(range(2, 17), 4))]
    return [Case(f"N = {N}", (N,), hint=hint) for N, hint in zip(sizes, hints, strict=True)]


def _legs_positive(N):
    A, B = hippo.legs(N)
    return -A, B


def _legs_diagonal_n(N):
    A, B = hippo.legs(N)
    return A + torch.eye(N, dtype=torch.float64), B


def _legs_upper(N):
    A, B = hippo.legs(N)
    return A.T.contiguous(), B


LEGS_MISTAKES = (
    Mistake("the paper's sign convention", "the book folds the minus sign into A, so A is "
            "negative (stable: eigenvalues -1, ..., -N).", _legs_positive),
    Mistake("-n on the diagonal", "the diagonal is -(n+1): the -1/t of Leibniz's rule adds "
            "to the -n.", _legs_diagonal_n),
    Mistake("A transposed", "the nonzero part lies below the diagonal (n > k).", _legs_upper),
)


def check_legs(fn, *, verbose: bool = True, seed: int | None = None,
               cases: list[Case] | None = None) -> Report:
    """Exercise 3.1: ``fn(N) -> (A, B)``, LegS's matrices as float64 tensors (n, n) and (n,)."""
    return check_function(fn, hippo.legs, _legs_cases(seed) if cases is None else cases,
                          title="Exercise 3.1 (LegS's matrices)", rtol=1e-10, atol=1e-12,
                          forbid=(hippo.transition, hippo.legs_symbolic),
                          mistakes=LEGS_MISTAKES, verbose=verbose)


# --- Exercise 3.2: derive a row of A with sympy -------------------------------------------------


def symbols():
    """The sympy symbol of Exercise 3.2: z = 2x/t - 1, the Legendre variable on [-1, 1]."""
    return sp.Symbol("z")


def check_legs_row(row, *, verbose: bool = True) -> Report:
    """Exercise 3.2: the row n = 3 of LegS's A, derived exactly: [A_30, A_31, A_32, A_33]."""
    r = [sp.sqrt(7 * (2 * k + 1)) for k in range(3)]
    expected = sp.Matrix([[-r[0], -r[1], -r[2], -4]])
    mistakes = (
        Mistake("the row without -δ_nk", "the 1/t in front of the integral adds -c_n: "
                "-1 on the diagonal.", sp.Matrix([[-r[0], -r[1], -r[2], -3]])),
        Mistake("the row with the paper's sign", "the book folds the minus sign into A.",
                -expected),
    )
    return check_expression("row n = 3 of A", row, expected, title="Exercise 3.2 (derive)",
                            mistakes=mistakes,
                            hint="A_3k = -δ_3k - sqrt(7) a_3k / sqrt(2k+1), where a_3k is the "
                                 "coefficient of P_k in (z+1) P_3'(z).", verbose=verbose)


# --- Exercise 3.3: reconstruct the past from the coefficients -----------------------------------


def _reconstruct_reference(c, t, x):
    return hippo.reconstruct(c, "legs", t=t, x=x)


def _reconstruct_cases(seed: int | None = None) -> list[Case]:
    g = case_generator(3, seed)
    draw = random.Random(active_seed(seed)) if active_seed(seed) is not None else None

    def coefficients(N):
        return torch.randn(N, generator=g, dtype=torch.float64)

    def times(t, m=7):
        return torch.linspace(0.0, t, m, dtype=torch.float64)

    t3, N3, t4 = 2.5, 6, 3.0
    if draw is not None:
        t3, N3 = round(draw.uniform(1.5, 4), 2), draw.randint(4, 9)
        t4 = round(draw.uniform(2, 5), 2)
    c0 = 0.7 if draw is None else round(draw.uniform(-2, 2), 3)
    return [
        Case("a constant, N = 1", (torch.tensor([c0], dtype=torch.float64), 1.0, times(1.0)),
             hint="p_0 = 1: the reconstruction is c_0 everywhere."),
        Case("N = 3 at t = 1", (coefficients(3), 1.0, times(1.0)),
             hint="p_n(x) = sqrt(2n+1) P_n(2x/t - 1): do not forget the sqrt(2n+1)."),
        Case(f"N = {N3} at t = {t3}", (coefficients(N3), t3, times(t3, 11)),
             hint="the Legendre variable is z = 2x/t - 1: rescale x by t, not by 1."),
        Case(f"N = 40 at t = {t4:g} (many coefficients)", (coefficients(40), t4, times(t4, 25)),
             hint="compute P_n(z) by the three-term recurrence "
                  "(n+1) P_{n+1} = (2n+1) z P_n - n P_{n-1}, or with numpy's legval."),
    ]


def _legval(c, z, scale):
    coefficients = c.numpy() * (np.sqrt(2 * np.arange(len(c)) + 1) if scale else 1)
    return torch.from_numpy(np.polynomial.legendre.legval(z.numpy(), coefficients))


RECONSTRUCT_MISTAKES = (
    Mistake("z = 2x - 1", "the Legendre variable rescales x by t: z = 2x/t - 1.",
            lambda c, t, x: _legval(c, 2 * x - 1, True)),
    Mistake("the Legendre polynomials unnormalized", "p_n carries a factor sqrt(2n+1).",
            lambda c, t, x: _legval(c, 2 * x / t - 1, False)),
)


def check_reconstruct(fn, *, verbose: bool = True, seed: int | None = None,
                      cases: list[Case] | None = None) -> Report:
    """Exercise 3.3: ``fn(c, t, x)`` = Σ_n c_n sqrt(2n+1) P_n(2x/t - 1), float64, shape (m,)."""
    return check_function(fn, _reconstruct_reference,
                          _reconstruct_cases(seed) if cases is None else cases,
                          title="Exercise 3.3 (reconstruct the past)", rtol=1e-8, atol=1e-10,
                          forbid=(hippo.reconstruct, hippo.basis),
                          mistakes=RECONSTRUCT_MISTAKES, verbose=verbose)


# --- Exercise 3.4: predict, then measure how the error scales with N ----------------------------


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

    The exercise asks for a prediction and a measurement: both are required. The prediction
    is checked against the book's measurement within 10 %, the learner's measurement within 2 %.
    """
    title = "Exercise 3.4 (predict, then measure)"
    reference = error_ratio()
    report = check_value(
        "your prediction", prediction, reference, rtol=0.1, title=title, verbose=False,
        hint="a jump makes the n-th coefficient shrink like 1/n; the squared error is the sum "
             "of the squares of the coefficients left out.",
        mistakes=(Mistake("the ratio for an error falling like 1/N", "for a jump it is the "
                          "squared error that falls like 1/N.", 2.0),))
    if measured is None:
        report._record(False, "your measurement", "not measured yet: replace the None with "
                       "the ratio you measure with hippo.project and hippo.reconstruct.")
    else:
        report.extend(check_value(
            "your measurement", measured, reference, rtol=0.02, title=title, verbose=False,
            hint="RMS error with N = 32 divided by RMS error with N = 64, on the 'steps' "
                 "signal sampled at L = 1000 points.",
            mistakes=(Mistake("the ratio upside down", "divide the error with N = 32 by the "
                              "error with N = 64.", 1 / reference),)))
    return report.show() if verbose else report
