"""Checkers for Chapter 1, "The memory problem"."""

from __future__ import annotations

import sympy as sp
import torch

from sseq.exercises import Case, Report, check_expression, check_function, check_value
from sseq.memory import AttentionCache, RunningState, attend

__all__ = ["check_attend", "check_cache_bytes", "check_scalar_recall", "symbols"]


def _attend_cases() -> list[Case]:
    g = torch.Generator().manual_seed(2024)

    def qkv(t, d, d_v, scale=1.0):
        return (scale * torch.randn(d, generator=g), scale * torch.randn(t, d, generator=g),
                torch.randn(t, d_v, generator=g))

    return [
        Case("a short history (t=5, d=4)", qkv(5, 4, 4)),
        Case("values of another width (t=7, d=8, d_v=3)", qkv(7, 8, 3),
             hint="the output has V's width, d_v."),
        Case("a history of one token", qkv(1, 4, 4),
             hint="with one token, all the weight goes to it: the output is that value."),
        Case("the 1/sqrt(d) scale (d=64)", qkv(10, 64, 2),
             hint="divide the scores by sqrt(d), the size of q."),
        Case("large scores (no overflow)", qkv(6, 4, 4, scale=30.0),
             hint="exp overflows for large scores: subtract the largest score first "
                  "(torch.softmax does this for you)."),
    ]


def check_attend(fn, *, verbose: bool = True) -> Report:
    """Exercise 1.1: one query attending over a history, softmax(K q / sqrt(d)) V."""
    return check_function(fn, attend, _attend_cases(), title="Exercise 1.1 (attend)",
                          rtol=1e-4, atol=1e-5, verbose=verbose)


def check_cache_bytes(prediction, *, verbose: bool = True) -> Report:
    """Exercise 1.2: bytes held after 10,000 tokens of width 64 in float32 (state, cache)."""
    state = RunningState(64)
    cache = AttentionCache(64, capacity=10_000)
    cache.fill(10_000)
    measured = (state.memory_bytes(), cache.memory_bytes())
    if prediction is ... or prediction is None:
        return check_value("bytes held (state, cache)", ..., measured,
                           title="Exercise 1.2 (predict, then measure)", verbose=verbose)
    return check_value("bytes held (state, cache)", prediction, measured, rtol=0.01,
                       title="Exercise 1.2 (predict, then measure)",
                       hint="a float32 is 4 bytes; the cache holds a key and a value per token.",
                       verbose=verbose)


def symbols():
    """The sympy symbols of Exercise 1.3: the decay λ and the distance k."""
    return sp.symbols("lambda k", positive=True)


def check_scalar_recall(expr, *, verbose: bool = True) -> Report:
    """Exercise 1.3: R²_k for the scalar state h_t = λ h_{t-1} + u_t, in terms of λ and k."""
    lam, k = symbols()
    return check_expression("R²_k", expr, lam ** (2 * k) * (1 - lam**2),
                            title="Exercise 1.3 (derive)",
                            hint="Cov(h_t, u_{t-k}) = λ^k and Var(h_t) = 1 / (1 - λ²).",
                            verbose=verbose)
