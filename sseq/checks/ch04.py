"""Checkers for Chapter 4, "From continuous to discrete: recurrence and convolution".

Each checker takes ``seed=`` (another draw of the hidden cases, for grading) or ``cases=``
(an instructor's own) where its cases are random; the book's cases are the default.
"""

from __future__ import annotations

import math

import sympy as sp
import torch

from sseq import discretize, ssm
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

__all__ = ["check_bilinear_scalar", "check_decay_length", "check_kernel", "check_zoh_diagonal",
           "decay_length", "symbols"]


def _complex(*shape, seed: int, scale: float = 1.0, grading: int | None = None) -> torch.Tensor:
    g = case_generator(seed, grading)
    real, imag = (torch.randn(*shape, generator=g, dtype=torch.float64) for _ in range(2))
    return scale * torch.complex(real, imag)


# --- Exercise 4.1: zero-order hold for a diagonal A ---------------------------------------------


def _zoh_reference(A, B, dt):
    return discretize.zoh(A, B, dt, diagonal=True)


def _zoh_cases(seed: int | None = None) -> list[Case]:
    stable = torch.complex(-torch.linspace(0.1, 2.0, 5, dtype=torch.float64),
                           torch.linspace(0.0, 9.0, 5, dtype=torch.float64))
    dts = torch.tensor([[0.01], [0.1], [1.0]], dtype=torch.float64)
    if active_seed(seed) is not None:  # another draw of the same kinds of case
        stable = torch.complex(-_complex(5, seed=10, grading=seed).abs().real,
                               _complex(5, seed=11, grading=seed).imag * 3)
        dts = 10 ** (-2 * torch.rand(3, 1, generator=case_generator(12, seed),
                                     dtype=torch.float64))
    ones = torch.ones(5, dtype=torch.complex128)
    return [
        Case("a stable complex A (n=5), Δ = 0.1", (stable, ones, 0.1)),
        Case("random A and B, Δ = 0.5", (_complex(6, seed=1, grading=seed),
                                        _complex(6, seed=2, grading=seed), 0.5)),
        Case("one Δ per channel: A (3, 4), Δ (3, 1)",
             (_complex(3, 4, seed=3, grading=seed), _complex(3, 4, seed=4, grading=seed), dts),
             hint="write it with elementwise operations, so Δ broadcasts against A."),
        Case("A with a zero entry (an integrator)",
             (torch.tensor([0.0, -1.0 + 2.0j], dtype=torch.complex128),
              torch.ones(2, dtype=torch.complex128), 0.3),
             hint="(e^{Δa} − 1)/a is 0/0 at a = 0; its limit is Δ. Use torch.where."),
        Case("tiny A (precision)",
             (torch.tensor([1e-12 + 0j, -3e-10 + 1e-11j], dtype=torch.complex128),
              torch.ones(2, dtype=torch.complex128), 0.5),
             hint="exp(x) − 1 loses all digits for tiny x; torch.expm1(x) keeps them."),
    ]


ZOH_MISTAKES = (
    Mistake("Euler's rule", "zero-order hold is exact: A_bar = e^{ΔA}, not 1 + ΔA.",
            lambda A, B, dt: (1 + dt * A, dt * B)),
    Mistake("the simplified B_bar = ΔB", "Mamba uses it, but the exact zero-order hold "
            "is (e^{ΔA} − 1)/A · B.", lambda A, B, dt: (torch.exp(dt * A), dt * B)),
    Mistake("(e^{ΔA} − 1)/A computed as written", "at A = 0 it is 0/0 (its limit is Δ), and "
            "for tiny A, exp(x) − 1 loses every digit: use torch.expm1 and torch.where.",
            lambda A, B, dt: (torch.exp(dt * A), (torch.exp(dt * A) - 1) / A * B)),
    Mistake("B_bar without the division by A", "B_bar = (e^{ΔA} − 1)/A · B.",
            lambda A, B, dt: (torch.exp(dt * A), torch.expm1(dt * A) * B)),
)


def check_zoh_diagonal(fn, *, verbose: bool = True, seed: int | None = None,
                       cases: list[Case] | None = None) -> Report:
    """Exercise 4.1: ``fn(A, B, dt) -> (A_bar, B_bar)`` by ZOH, A diagonal (elementwise)."""
    return check_function(fn, _zoh_reference, _zoh_cases(seed) if cases is None else cases,
                          title="Exercise 4.1 (zero-order hold)", rtol=1e-9, atol=1e-12,
                          forbid=(discretize.zoh,), mistakes=ZOH_MISTAKES, verbose=verbose)


# --- Exercise 4.2: the kernel of a diagonal SSM -------------------------------------------------


def _kernel_reference(A_bar, B_bar, C, L):
    return ssm.kernel(A_bar, B_bar, C, L, diagonal=True)


def _kernel_cases(seed: int | None = None) -> list[Case]:
    lam = 0.95 * torch.exp(1j * torch.linspace(0, 3, 4, dtype=torch.float64))
    if active_seed(seed) is not None:
        angles = torch.rand(4, generator=case_generator(13, seed), dtype=torch.float64)
        lam = 0.95 * torch.exp(1j * math.pi * angles)
    B, C = _complex(4, seed=5, grading=seed), _complex(4, seed=6, grading=seed)
    ones = torch.ones(2, dtype=torch.complex128)
    return [
        Case("n = 4 modes, L = 10", (lam, B, C, 10)),
        Case("L = 1 (only K_0 = C·B_bar)", (lam, B, C, 1)),
        Case("one SSM per channel: (3, 4) → (3, 20)",
             (0.9 * torch.exp(_complex(3, 4, seed=7, scale=0.1, grading=seed)),
              _complex(3, 4, seed=8, grading=seed), _complex(3, 4, seed=9, grading=seed), 20),
             hint="sum over the last axis (the modes) only: einsum('...n,...nl->...l')."),
        Case("an eigenvalue equal to 0",
             (torch.tensor([0.0, 0.5j], dtype=torch.complex128), ones, ones, 5),
             hint="λ⁰ = 1 even when λ = 0, but torch gives NaN for a complex 0**0 "
                  "and for exp(0·log 0): set the k = 0 column to 1 yourself."),
        Case("a long memory, |λ| = 0.999 and L = 2000", (lam / 0.95 * 0.999, B, C, 2000),
             max_lines=200, hint="build all the powers λ^k at once, without a loop over k."),
    ]


def _powers(A_bar, L, start=0):
    k = torch.arange(start, start + L, dtype=A_bar.real.dtype)
    return A_bar.unsqueeze(-1) ** k  # (..., n, L)


KERNEL_MISTAKES = (
    Mistake("the kernel without C", "K_k = Σ_n C_n B_bar_n λ_n^k: C weighs each mode.",
            lambda A_bar, B_bar, C, L: torch.einsum("...n,...nl->...l", B_bar,
                                                    _powers(A_bar, L).nan_to_num(1.0))),
    Mistake("powers starting at λ¹", "the kernel starts at K_0 = C·B_bar (λ⁰ = 1).",
            lambda A_bar, B_bar, C, L: torch.einsum("...n,...nl->...l", C * B_bar,
                                                    _powers(A_bar, L, start=1))),
    Mistake("λ^k as exp(k log λ)", "at λ = 0 it gives NaN for k = 0: set that column to 1.",
            lambda A_bar, B_bar, C, L: torch.einsum(
                "...n,...nl->...l", C * B_bar,
                torch.exp(torch.log(A_bar).unsqueeze(-1) * torch.arange(L, dtype=torch.float64)))),
)


def check_kernel(fn, *, verbose: bool = True, seed: int | None = None,
                 cases: list[Case] | None = None) -> Report:
    """Exercise 4.2: ``fn(A_bar, B_bar, C, L)`` = (Σ_n C_n B_bar_n λ_n^k for k < L), diagonal.

    The exercise asks for no loop over k: on the case with L = 2000, the learner's own Python
    may run at most 200 lines.
    """
    return check_function(fn, _kernel_reference, _kernel_cases(seed) if cases is None else cases,
                          title="Exercise 4.2 (the kernel)", rtol=1e-7, atol=1e-10,
                          forbid=(ssm.kernel, ssm.kernel_ref), mistakes=KERNEL_MISTAKES,
                          verbose=verbose)


# --- Exercise 4.3: derive the bilinear rule -----------------------------------------------------


def symbols():
    """The sympy symbols of Exercise 4.3: the scalar a and the step Δ (``dt``)."""
    return sp.symbols("a Delta")


def check_bilinear_scalar(A_bar, *, verbose: bool = True) -> Report:
    """Exercise 4.3: A_bar of the bilinear rule for x' = a x, in terms of a and Δ."""
    a, dt = symbols()
    mistakes = (
        Mistake("Euler's (forward) rule", "the trapezoid averages x_k and x_{k−1}.", 1 + dt * a),
        Mistake("the backward Euler rule", "the trapezoid averages x_k and x_{k−1}.",
                1 / (1 - dt * a)),
        Mistake("the bilinear rule upside down", "solve for x_k, then divide by x_{k−1}.",
                (1 - dt * a / 2) / (1 + dt * a / 2)),
        Mistake("zero-order hold's e^{Δa}", "the trapezoid rule gives a rational function of "
                "Δa that approximates it.", sp.exp(dt * a)),
    )
    return check_expression("A_bar (bilinear)", A_bar, (1 + dt * a / 2) / (1 - dt * a / 2),
                            title="Exercise 4.3 (derive)", symbols=(a, dt),
                            domain={a: (-3.0, 3.0), dt: (0.01, 0.5)}, mistakes=mistakes,
                            hint="x_k − x_{k−1} = (Δ/2)·a·(x_k + x_{k−1}); solve for x_k and "
                                 "divide by x_{k−1}.", verbose=verbose)


# --- Exercise 4.4: predict, then measure the memory of one mode ---------------------------------


def decay_length(A, dt: float, L: int = 4000) -> float:
    """Steps over which the kernel's envelope |K_k| of one ZOH mode shrinks by a factor e.

    Measured from ``sseq.ssm.kernel``: the mean slope of log|K_k| over k, inverted.
    """
    A = torch.tensor([complex(A)], dtype=torch.complex128)
    A_bar, B_bar = discretize.zoh(A, torch.ones_like(A), dt)
    K = ssm.kernel(A_bar, B_bar, torch.ones_like(A), L)  # (L,) complex
    slope = (K.abs().log()[-1] - K.abs().log()[0]) / (L - 1)
    return float(-1 / slope)


def check_decay_length(prediction, *, verbose: bool = True) -> Report:
    """Exercise 4.4: the decay length, in steps, of the S4D-Lin mode A = −1/2 + 3πi at Δ = 0.05."""
    A, dt = -0.5 + 3j * math.pi, 0.05
    measured = decay_length(A, dt)
    mistakes = (
        Mistake("1/(Δ|A|)", "|e^{kΔA}| = e^{kΔ·Re A}: the imaginary part only rotates.",
                1 / (dt * abs(A))),
        Mistake("a length in time, not in steps", "1/|Re A| is a time; divide it by Δ to count "
                "steps.", 1 / abs(A.real)),
    )
    return check_value("decay length (steps)", prediction, measured, rtol=0.02,
                       title="Exercise 4.4 (predict, then measure)", mistakes=mistakes,
                       hint="|e^{kΔA}| = e^{kΔ·Re A}: only the real part of A sets the memory.",
                       verbose=verbose)
