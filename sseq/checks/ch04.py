"""Checkers for Chapter 4, "From continuous to discrete: recurrence and convolution"."""

from __future__ import annotations

import math

import sympy as sp
import torch

from sseq import discretize, ssm
from sseq.exercises import Case, Report, check_expression, check_function, check_value

__all__ = ["check_bilinear_scalar", "check_decay_length", "check_kernel", "check_zoh_diagonal",
           "decay_length", "symbols"]


def _complex(*shape, seed: int, scale: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    real, imag = (torch.randn(*shape, generator=g, dtype=torch.float64) for _ in range(2))
    return scale * torch.complex(real, imag)


# --- Exercise 4.1: zero-order hold for a diagonal A ---------------------------------------------


def _zoh_reference(A, B, dt):
    return discretize.zoh(A, B, dt, diagonal=True)


def _zoh_cases() -> list[Case]:
    stable = torch.complex(-torch.linspace(0.1, 2.0, 5, dtype=torch.float64),
                           torch.linspace(0.0, 9.0, 5, dtype=torch.float64))
    ones = torch.ones(5, dtype=torch.complex128)
    return [
        Case("a stable complex A (n=5), Δ = 0.1", (stable, ones, 0.1)),
        Case("random A and B, Δ = 0.5", (_complex(6, seed=1), _complex(6, seed=2), 0.5)),
        Case("one Δ per channel: A (3, 4), Δ (3, 1)",
             (_complex(3, 4, seed=3), _complex(3, 4, seed=4),
              torch.tensor([[0.01], [0.1], [1.0]], dtype=torch.float64)),
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


def check_zoh_diagonal(fn, *, verbose: bool = True) -> Report:
    """Exercise 4.1: ``fn(A, B, dt) -> (A_bar, B_bar)`` by ZOH, A diagonal (elementwise)."""
    return check_function(fn, _zoh_reference, _zoh_cases(),
                          title="Exercise 4.1 (zero-order hold)", rtol=1e-9, atol=1e-12,
                          verbose=verbose)


# --- Exercise 4.2: the kernel of a diagonal SSM --------------------------------------------------


def _kernel_reference(A_bar, B_bar, C, L):
    return ssm.kernel(A_bar, B_bar, C, L, diagonal=True)


def _kernel_cases() -> list[Case]:
    lam = 0.95 * torch.exp(1j * torch.linspace(0, 3, 4, dtype=torch.float64))
    B, C = _complex(4, seed=5), _complex(4, seed=6)
    ones = torch.ones(2, dtype=torch.complex128)
    return [
        Case("n = 4 modes, L = 10", (lam, B, C, 10)),
        Case("L = 1 (only K_0 = C·B_bar)", (lam, B, C, 1)),
        Case("one SSM per channel: (3, 4) → (3, 20)",
             (0.9 * torch.exp(_complex(3, 4, seed=7, scale=0.1)), _complex(3, 4, seed=8),
              _complex(3, 4, seed=9), 20),
             hint="sum over the last axis (the modes) only: einsum('...n,...nl->...l')."),
        Case("an eigenvalue equal to 0",
             (torch.tensor([0.0, 0.5j], dtype=torch.complex128), ones, ones, 5),
             hint="λ⁰ = 1 even when λ = 0, but torch gives NaN for a complex 0**0 "
                  "and for exp(0·log 0): set the k = 0 column to 1 yourself."),
        Case("a long memory, |λ| = 0.999 and L = 2000", (lam / 0.95 * 0.999, B, C, 2000)),
    ]


def check_kernel(fn, *, verbose: bool = True) -> Report:
    """Exercise 4.2: ``fn(A_bar, B_bar, C, L)`` = (Σ_n C_n B_bar_n λ_n^k for k < L), diagonal."""
    return check_function(fn, _kernel_reference, _kernel_cases(),
                          title="Exercise 4.2 (the kernel)", rtol=1e-7, atol=1e-10,
                          verbose=verbose)


# --- Exercise 4.3: derive the bilinear rule -------------------------------------------------------


def symbols():
    """The sympy symbols of Exercise 4.3: the scalar a and the step Δ (``dt``)."""
    return sp.symbols("a Delta")


def check_bilinear_scalar(A_bar, *, verbose: bool = True) -> Report:
    """Exercise 4.3: A_bar of the bilinear rule for x' = a x, in terms of a and Δ."""
    a, dt = symbols()
    return check_expression("A_bar (bilinear)", A_bar, (1 + dt * a / 2) / (1 - dt * a / 2),
                            title="Exercise 4.3 (derive)",
                            hint="x_k − x_{k−1} = (Δ/2)·a·(x_k + x_{k−1}); solve for x_k and "
                                 "divide by x_{k−1}.", verbose=verbose)


# --- Exercise 4.4: predict, then measure the memory of one mode ----------------------------------


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
    measured = decay_length(-0.5 + 3j * math.pi, 0.05)
    return check_value("decay length (steps)", prediction, measured, rtol=0.02,
                       title="Exercise 4.4 (predict, then measure)",
                       hint="|e^{kΔA}| = e^{kΔ·Re A}: only the real part of A sets the memory.",
                       verbose=verbose)
