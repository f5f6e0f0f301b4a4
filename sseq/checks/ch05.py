"""Checkers for Chapter 5, "Selective state spaces"."""

from __future__ import annotations

import torch

from sseq import traffic
from sseq.exercises import Case, Report, check_function, check_value
from sseq.scan import prefix as prefix_scan

__all__ = ["check_blelloch_work", "check_combine", "check_materialized_bytes",
           "check_selective_step"]


def _rand(*shape, seed: int, low: float = -1.0, high: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return low + (high - low) * torch.rand(*shape, generator=g, dtype=torch.float64)


# --- Exercise 5.1: the associative operator ------------------------------------------------------


def _combine_reference(first, second):
    return prefix_scan.combine(first, second)


def _combine_cases() -> list[Case]:
    a1, b1, a2, b2 = (_rand(3, 4, seed=s) for s in range(4))
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


def check_combine(fn, *, verbose: bool = True) -> Report:
    """Exercise 5.1: ``fn((a1, b1), (a2, b2)) -> (a, b)``, the step (a1, b1) then (a2, b2)."""
    return check_function(fn, _combine_reference, _combine_cases(),
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


def _step_cases() -> list[Case]:
    b, d, n = 2, 3, 4
    A = -torch.arange(1, n + 1, dtype=torch.float64).repeat(d, 1)  # S4D-Real
    args = lambda s, dt: (_rand(b, d, n, seed=s), _rand(b, d, seed=s + 1),  # noqa: E731
                          dt * _rand(b, d, seed=s + 2, low=0.5, high=1.0), A,
                          _rand(b, n, seed=s + 3), _rand(b, n, seed=s + 4))
    return [
        Case("b=2, d=3, n=4, Δ about 0.1", args(0, 0.1),
             hint="A_bar = exp(Δ A) has shape (b, d, n): Δ (b, d) times A (d, n)."),
        Case("a large step, Δ about 2", args(10, 2.0),
             hint="B is discretized by Euler, Δ·B·u — not by zero-order hold."),
        Case("from a zero state", (torch.zeros(b, d, n, dtype=torch.float64),
                                   *args(20, 0.5)[1:]),
             hint="y_t = Σ_n C_t[n] h_t[d, n], read out after the update."),
    ]


def check_selective_step(fn, *, verbose: bool = True) -> Report:
    """Exercise 5.4: ``fn(h, u_t, dt_t, A, B_t, C_t) -> (y_t, h)``, one step of S6."""
    return check_function(fn, _step_reference, _step_cases(),
                          title="Exercise 5.4 (one selective step)", rtol=1e-10, atol=1e-12,
                          verbose=verbose)
