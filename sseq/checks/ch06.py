"""Checkers for Chapter 6, "Attention: the no-compression extreme".

The implement checkers take ``seed=`` (another draw of the hidden cases, for grading) or
``cases=`` (an instructor's own); the book's cases are the default.
"""

from __future__ import annotations

import functools
import math
import random

import sympy as sp
import torch

from sseq.attention import causal_mask, linear_attention_recurrent, softmax_kernel_estimate
from sseq.exercises import (
    Case,
    Report,
    active_seed,
    case_generator,
    check_expression,
    check_function,
    check_value,
)

__all__ = ["check_causal_mask", "check_kv_cache_formula", "check_linear_recurrence",
           "check_performer_ratio", "kernel_error", "symbols"]


# --- Exercise 6.1: the causal mask of a KV cache ---------------------------------------------


def _causal_mask_reference(l_q, l_k):
    return causal_mask(l_q, l_k)


def _causal_mask_cases(seed: int | None = None) -> list[Case]:
    draw = random.Random(active_seed(seed)) if active_seed(seed) is not None else None

    def sizes(l_q, l_k):  # the book's sizes, or others with as many cached tokens or more
        if draw is None:
            return l_q, l_k
        new_q = draw.randint(1, 2 * l_q)
        return new_q, new_q + draw.randint(0, 2 * (l_k - l_q) + 1)

    a, b, c, d = sizes(5, 5)[0], sizes(1, 8)[1], sizes(3, 7), sizes(16, 40)
    return [
        Case(f"a whole sequence: l_q = l_k = {a}", (a, a),
             hint="with as many queries as keys it is the lower triangle, diagonal included."),
        Case(f"one new token after {b - 1} cached ones: l_q = 1, l_k = {b}", (1, b),
             hint="the newest token is the last one: it sees every key, itself included."),
        Case(f"{c[0]} new tokens after {c[1] - c[0]} cached: l_q = {c[0]}, l_k = {c[1]}", c,
             hint="query i is token l_k − l_q + i of the sequence: shift the diagonal by "
                  "l_k − l_q (torch.tril's diagonal argument)."),
        Case("a single token: l_q = l_k = 1", (1, 1)),
        Case(f"a longer prompt: l_q = {d[0]}, l_k = {d[1]}", d),
    ]


def check_causal_mask(fn, *, verbose: bool = True, seed: int | None = None,
                      cases: list[Case] | None = None) -> Report:
    """Exercise 6.1: ``fn(l_q, l_k)`` → bool ``(l_q, l_k)``, True where query i sees key j."""
    cases = _causal_mask_cases(seed) if cases is None else cases
    return check_function(fn, _causal_mask_reference, cases,
                          title="Exercise 6.1 (the causal mask of a cache)", verbose=verbose)


# --- Exercise 6.2: derive the KV-cache bytes ----------------------------------------------------


def symbols():
    """The sympy symbols of Exercise 6.2: layers, K/V heads, head size, bytes, tokens."""
    return sp.symbols("n_layers n_kv_heads d_head bytes_per_value tokens", positive=True,
                      integer=True)


def check_kv_cache_formula(expr, *, verbose: bool = True) -> Report:
    """Exercise 6.2: bytes of the KV cache of one sequence after ``tokens`` tokens."""
    n_layers, n_kv_heads, d_head, bytes_per_value, tokens = symbols()
    expected = 2 * n_layers * n_kv_heads * d_head * bytes_per_value * tokens
    return check_expression("KV-cache bytes", expr, expected,
                            title="Exercise 6.2 (derive)",
                            hint="per token and per layer the cache keeps one key and one value "
                                 "for every K/V head (not every query head), each d_head "
                                 "numbers.", verbose=verbose)


# --- Exercise 6.3: linear attention's recurrence ------------------------------------------------


def _recurrence_reference(q, k, v):
    return linear_attention_recurrent(q, k, v, "elu+1", eps=0.0)


def _qkv(b, h, l, d, d_v, *, seed, scale=1.0, grading=None):
    g = case_generator(seed, grading)
    return (scale * torch.randn(b, h, l, d, generator=g, dtype=torch.float64),
            scale * torch.randn(b, h, l, d, generator=g, dtype=torch.float64),
            torch.randn(b, h, l, d_v, generator=g, dtype=torch.float64))


def _recurrence_cases(seed: int | None = None) -> list[Case]:
    draw = functools.partial(_qkv, grading=seed)
    return [
        Case("one head, l = 6, d = d_v = 4", draw(1, 1, 6, 4, 4, seed=0)),
        Case("batches and heads: (2, 3, 10, 4)", draw(2, 3, 10, 4, 4, seed=1),
             hint="keep the batch and head axes in front: S has shape (b, h, d, d_v)."),
        Case("values of another width: d = 3, d_v = 5", draw(1, 2, 8, 3, 5, seed=2),
             hint="the state is φ(k) v^T, a d × d_v matrix."),
        Case("a single token", draw(1, 1, 1, 4, 4, seed=3),
             hint="after one token the output is v_0 itself: the state holds only it."),
        Case("a long sequence, l = 200", draw(1, 1, 200, 4, 4, seed=4, scale=0.5),
             hint="y_t must use the state after token t is added, not before."),
    ]


def check_linear_recurrence(fn, *, verbose: bool = True, seed: int | None = None,
                            cases: list[Case] | None = None) -> Report:
    """Exercise 6.3: causal linear attention with φ = elu + 1, computed as a recurrence."""
    cases = _recurrence_cases(seed) if cases is None else cases
    return check_function(fn, _recurrence_reference, cases,
                          title="Exercise 6.3 (linear attention as a recurrence)",
                          rtol=1e-6, atol=1e-9, verbose=verbose)


# --- Exercise 6.4: predict, then measure the Performer's error ----------------------------------


def kernel_error(n_features: int, *, n_seeds: int = 128, d: int = 16, seed: int = 0) -> float:
    """Root-mean-square relative error of the Performer's estimate of exp(q · k).

    Independent random features (not orthogonal), for 32 random pairs of small queries and
    keys (entries of size 0.1: the estimate's error has heavy tails when |q + k| is large),
    over ``n_seeds`` draws of the features.
    """
    g = torch.Generator().manual_seed(seed)
    q = 0.1 * torch.randn(32, d, generator=g, dtype=torch.float64)
    k = 0.1 * torch.randn(32, d, generator=g, dtype=torch.float64)
    exact = torch.exp((q * k).sum(-1))                                 # (32,) the diagonal pairs
    squared = [((softmax_kernel_estimate(q[:, None], k[:, None], n_features, 1000 + s,
                                          orthogonal=False)[:, 0, 0] - exact) / exact).square()
               for s in range(n_seeds)]
    return math.sqrt(torch.stack(squared).mean().item())


def check_performer_ratio(prediction, *, verbose: bool = True) -> Report:
    """Exercise 6.4: the error with 4m random features divided by the error with m (m = 64)."""
    measured = kernel_error(256) / kernel_error(64)
    return check_value("error(4m) / error(m)", prediction, measured, rtol=0.1,
                       title="Exercise 6.4 (predict, then measure)",
                       hint="the estimate is an average of m independent terms: its variance "
                            "falls like 1/m, so its standard deviation like 1/√m.",
                       verbose=verbose)
