"""Checkers for Chapter 5, "Selective state spaces".

The implement checkers take ``seed=`` (another draw of the hidden cases, for grading) or
``cases=`` (an instructor's own); the book's cases are the default.
"""

from __future__ import annotations

import torch

from sseq import traffic
from sseq.exercises import Case, Report, case_generator, check_function, check_value
from sseq.scan import prefix as prefix_scan

__all__ = ["check_blelloch_work", "check_combine", "check_materialized_bytes",
           "check_selective_step"]


def _rand(*shape, seed: int, low: float = -1.0, high: float = 1.0,
          grading: int | None = None) -> torch.Tensor:
    g = case_generator(seed, grading)
    return low + (high - low) * torch.rand(*shape, generator=g, dtype=torch.float64)


# --- Exercise 5.1: the associative operator ------------------------------------------------------


def _combine_reference(first, second):
    return prefix_scan.combine(first, second)


def _combine_cases(seed: int | None = None) -> list[Case]:
    a1, b1, a2, b2 = (_rand(3, 4, seed=s, grading=seed) for s in range(4))
    return [
        Case("two scalar steps", ((0.5, 1.0), (2.0, -3.0)),
             hint="apply (a₁, b₁) first: h ↦ a₂(a₁h + b₁) + b₂."),
        Case("tensors of shape (3, 4)", ((a1, b1), (a2, b2)),
             hint="everything is elementwise: * and +, no matrix products."),
        Case("the order matters: (a₁, b₁) first", ((a2, b2), (a1, b1)),
             hint="(a₁, b₁) • (a₂, b₂) ≠ (a₂, b₂) • (a₁, b₁): the later step multiplies b₁."),
        Case("with the identity step (1, 0) first", ((torch.ones(3, 4, dtype=torch.float64),
                                                     torch.zeros(3, 4, dtype=torch.float64)),
                                                    (a1, b1))),
        Case("broadcasting a (3, 1) against (3, 4)", ((a1[:, :1], b1), (a2, b2[:, :1]))),
    ]


def check_combine(fn, *, verbose: bool = True, seed: int | None = None,
                  cases: list[Case] | None = None) -> Report:
    """Exercise 5.1: ``fn((a1, b1), (a2, b2)) -> (a, b)``, the step (a1, b1) then (a2, b2)."""
    return check_function(fn, _combine_reference, _combine_cases(seed) if cases is None else cases,
                          title="Exercise 5.1 (the associative operator)", rtol=1e-12,
                          atol=1e-12, verbose=verbose)


# --- Exercise 5.2: predict, then count Blelloch's work -------------------------------------------


def check_blelloch_work(prediction, *, l: int = 1000, verbose: bool = True) -> Report:
    """Exercise 5.2: the number of combines Blelloch's scan does for a sequence of length l."""
    trace = prefix_scan.Trace()
    prefix_scan.blelloch(torch.ones(1, l), torch.zeros(1, l), trace)
    return check_value(f"combines for l = {l}", prediction, trace.work, rtol=0.0, atol=0.5,
                       title="Exercise 5.2 (predict, then count)",
                       hint="the length is first padded to a power of two n; the up-sweep and "
                            "the down-sweep each combine n − 1 times.", verbose=verbose)


# --- Exercise 5.3: predict the bytes of materialized states --------------------------------------


def check_materialized_bytes(prediction, *, verbose: bool = True) -> Report:
    """Exercise 5.3: bytes of one float32 (b, l, d, n) tensor for b=8, l=2048, d=1536, n=16."""
    expected = traffic.scan_bytes(8, 2048, 1536, 16)["states"]
    return check_value("bytes of the states (b, l, d, n), float32", prediction, expected,
                       rtol=0.01, title="Exercise 5.3 (predict the bytes)",
                       hint="b·l·d·n numbers of 4 bytes each; a GiB is 2³⁰ bytes, a GB 10⁹.",
                       verbose=verbose)


# --- Exercise 5.4: one step of the selective recurrence ------------------------------------------


def _step_reference(h, u_t, dt_t, A, B_t, C_t):
    A_bar = torch.exp(dt_t[..., None] * A)  # (b, d, n), zero-order hold
    h = A_bar * h + (dt_t * u_t)[..., None] * B_t[:, None, :]  # Euler for B
    return (h * C_t[:, None, :]).sum(-1), h


def _step_cases(seed: int | None = None) -> list[Case]:
    b, d, n = 2, 3, 4
    A = -torch.arange(1, n + 1, dtype=torch.float64).repeat(d, 1)  # S4D-Real

    def args(s, dt):  # the book's draw s, or another with the grading seed
        h, u, dt_t, B, C = ((b, d, n), (b, d), (b, d), (b, n), (b, n))
        h, u, B, C = (_rand(*shape, seed=s + k, grading=seed)
                      for k, shape in ((0, h), (1, u), (3, B), (4, C)))
        dt_t = dt * _rand(*dt_t, seed=s + 2, low=0.5, high=1.0, grading=seed)
        return h, u, dt_t, A, B, C

    return [
        Case("b=2, d=3, n=4, Δ about 0.1", args(0, 0.1),
             hint="A_bar = exp(Δ A) has shape (b, d, n): Δ (b, d) times A (d, n)."),
        Case("a large step, Δ about 2", args(10, 2.0),
             hint="B is discretized by Euler, Δ·B·u — not by zero-order hold."),
        Case("from a zero state", (torch.zeros(b, d, n, dtype=torch.float64),
                                   *args(20, 0.5)[1:]),
             hint="y_t = Σ_n C_t[n] h_t[d, n], read out after the update."),
    ]


def check_selective_step(fn, *, verbose: bool = True, seed: int | None = None,
                         cases: list[Case] | None = None) -> Report:
    """Exercise 5.4: ``fn(h, u_t, dt_t, A, B_t, C_t) -> (y_t, h)``, one step of S6."""
    return check_function(fn, _step_reference, _step_cases(seed) if cases is None else cases,
                          title="Exercise 5.4 (one selective step)", rtol=1e-10, atol=1e-12,
                          verbose=verbose)
