"""Checkers for Chapter 1, "The memory problem".

Each checker takes ``seed=`` (another draw of the hidden cases, for grading) or ``cases=``
(an instructor's own) where its cases are random; the book's cases are the default.
"""

from __future__ import annotations

import math
import random

import sympy as sp
import torch

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
from sseq.memory import AttentionCache, RunningState, attend

__all__ = ["check_attend", "check_cache_bytes", "check_scalar_recall", "symbols"]


# --- Exercise 1.1: one step of attention --------------------------------------------------------


def _attend_cases(seed: int | None = None) -> list[Case]:
    g = case_generator(2024, seed)
    sizes = random.Random(active_seed(seed)) if active_seed(seed) is not None else None

    def pick(book, low, high):
        return book if sizes is None else sizes.randint(low, high)

    def qkv(t, d, d_v, scale=1.0):
        return (scale * torch.randn(d, generator=g), scale * torch.randn(t, d, generator=g),
                torch.randn(t, d_v, generator=g))

    t, d = pick(5, 3, 9), pick(4, 2, 8)
    t2, d2, v2 = pick(7, 3, 9), pick(8, 5, 12), pick(3, 1, 4)
    big, t4 = pick(64, 48, 96), pick(10, 6, 12)
    return [
        Case(f"a short history (t={t}, d={d})", qkv(t, d, d)),
        Case(f"values of another width (t={t2}, d={d2}, d_v={v2})", qkv(t2, d2, v2),
             hint="the output has V's width, d_v."),
        Case("a history of one token", qkv(1, d, d),
             hint="with one token, all the weight goes to it: the output is that value."),
        Case(f"the 1/sqrt(d) scale (d={big})", qkv(t4, big, 2),
             hint="divide the scores by sqrt(d), the size of q."),
        Case("large scores (no overflow)", qkv(6, d, d, scale=30.0),
             hint="exp overflows for large scores: subtract the largest score first "
                  "(torch.softmax does this for you)."),
    ]


def _unscaled(q, K, V):
    return torch.softmax(K @ q, dim=0) @ V


def _divided_by_d(q, K, V):
    return torch.softmax(K @ q / q.shape[0], dim=0) @ V


def _naive_softmax(q, K, V):
    e = torch.exp(K @ q / math.sqrt(q.shape[0]))
    return (e / e.sum()) @ V


def _weights_only(q, K, V):
    return torch.softmax(K @ q / math.sqrt(q.shape[0]), dim=0)


ATTEND_MISTAKES = (
    Mistake("attention without the scale", "divide the scores K q by sqrt(d).", _unscaled),
    Mistake("the scores divided by d", "the scale is 1/sqrt(d), not 1/d.", _divided_by_d),
    Mistake("a softmax that overflows", "exp of a large score is inf; subtract the largest "
            "score before exponentiating (torch.softmax does).", _naive_softmax),
    Mistake("the attention weights", "they are only the first half: the output is the "
            "weights times V.", _weights_only),
)


def check_attend(fn, *, verbose: bool = True, seed: int | None = None,
                 cases: list[Case] | None = None) -> Report:
    """Exercise 1.1: one query attending over a history, softmax(K q / sqrt(d)) V."""
    return check_function(fn, attend, _attend_cases(seed) if cases is None else cases,
                          title="Exercise 1.1 (attend)", rtol=1e-4, atol=1e-5, verbose=verbose,
                          mistakes=ATTEND_MISTAKES)


# --- Exercise 1.2: predict, then measure the bytes held -----------------------------------------


def _bytes(state: int, cache: int) -> tuple[int, int]:
    return (state, cache)


CACHE_MISTAKES = (
    Mistake("a count in bits", "a float32 is 4 bytes (32 bits).",
            _bytes(64 * 32, 20_000 * 64 * 32)),
    Mistake("a count of numbers, not bytes", "multiply by the 4 bytes of a float32.",
            _bytes(64, 20_000 * 64)),
    Mistake("float64's size", "the exercise says float32: 4 bytes a number.",
            _bytes(64 * 8, 20_000 * 64 * 8)),
    Mistake("a cache of keys only", "the cache holds a key and a value for every token.",
            _bytes(64 * 4, 10_000 * 64 * 4)),
)


def check_cache_bytes(prediction, *, verbose: bool = True) -> Report:
    """Exercise 1.2: bytes held after 10,000 tokens of width 64 in float32 (state, cache)."""
    state = RunningState(64)
    cache = AttentionCache(64, capacity=10_000)
    cache.fill(10_000)
    measured = (state.memory_bytes(), cache.memory_bytes())
    return check_value("bytes held (state, cache)", prediction, measured, rtol=0.01,
                       title="Exercise 1.2 (predict, then measure)",
                       hint="a float32 is 4 bytes; the cache holds a key and a value per token.",
                       mistakes=CACHE_MISTAKES, verbose=verbose)


# --- Exercise 1.3: derive the memory of one number ----------------------------------------------


def symbols():
    """The sympy symbols of Exercise 1.3: the decay λ and the distance k."""
    return sp.symbols("lambda k", positive=True)


def check_scalar_recall(expr, *, verbose: bool = True) -> Report:
    """Exercise 1.3: R²_k for the scalar state h_t = λ h_{t-1} + u_t, in terms of λ and k."""
    lam, k = symbols()
    mistakes = (
        Mistake("the covariance, not R²", "square it and divide by Var(h_t).",
                lam**k),
        Mistake("Cov(h_t, u_{t-k}) / Var(h_t), not squared", "R² squares the covariance.",
                lam**k * (1 - lam**2)),
        Mistake("Cov² without the variance", "divide by Var(h_t) = Σ_j λ^{2j}.", lam ** (2 * k)),
        Mistake("Cov² times the variance", "R² divides by Var(h_t).",
                lam ** (2 * k) / (1 - lam**2)),
        Mistake("a variance of 1/(1 - λ)", "Var(h_t) = Σ_j λ^{2j} is a geometric series in λ².",
                lam ** (2 * k) * (1 - lam)),
    )
    return check_expression("R²_k", expr, lam ** (2 * k) * (1 - lam**2),
                            title="Exercise 1.3 (derive)", symbols=(lam, k),
                            domain={lam: (0.05, 0.95), k: range(1, 12)}, mistakes=mistakes,
                            hint="Cov(h_t, u_{t-k}) = λ^k and Var(h_t) = 1 / (1 - λ²).",
                            verbose=verbose)
