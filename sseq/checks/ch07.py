"""Checkers for Chapter 7, "Next-token prediction".

The implement checkers take ``seed=`` (another draw of the hidden cases, for grading) or
``cases=`` (an instructor's own); the book's cases are the default.
"""

from __future__ import annotations

import math
import random

import torch

from sseq.exercises import Case, Report, active_seed, case_generator, check_function, check_value
from sseq.lm import GPT, top_k_logits

__all__ = ["check_bits_and_perplexity", "check_kv_cache_bytes", "check_top_k_probs",
           "kv_cache_bytes"]


# --- Exercise 7.1: bits per character and perplexity ------------------------------------------


def _bits_and_perplexity_reference(nats):
    return nats / math.log(2), math.exp(nats)


def _bits_cases(seed: int | None = None) -> list[Case]:
    draw = random.Random(active_seed(seed)) if active_seed(seed) is not None else None
    gpt, bigram, poor = (1.81, 2.48, 3.5) if draw is None else (
        round(draw.uniform(1.2, 2.2), 3), round(draw.uniform(2.2, 3.0), 3),
        round(draw.uniform(3.0, 4.2), 3))
    return [
        Case(f"{'the GPT' if draw is None else 'a model'}'s validation loss, {gpt} nats", (gpt,),
             hint="a bit is log₂, a nat is ln: bits = nats / ln 2."),
        Case("the uniform model over 65 characters, ln 65 nats", (math.log(65),),
             hint="perplexity = e^loss with the loss in nats (not 2^loss): here it is 65, "
                  "the number of equally likely characters."),
        Case("a perfect model, 0 nats", (0.0,),
             hint="a loss of 0 means certainty: 0 bits, perplexity 1 (one choice)."),
        Case(f"{'the' if draw is None else 'a'} bigram model, {bigram} nats", (bigram,)),
        Case(f"a poor model, {poor} nats", (poor,)),
    ]


def check_bits_and_perplexity(fn, *, verbose: bool = True, seed: int | None = None,
                              cases: list[Case] | None = None) -> Report:
    """Exercise 7.1: ``fn(nats) -> (bits_per_char, perplexity)`` for a loss in nats per char."""
    cases = _bits_cases(seed) if cases is None else cases
    return check_function(fn, _bits_and_perplexity_reference, cases,
                          title="Exercise 7.1 (bits per character and perplexity)",
                          rtol=1e-9, atol=1e-12, verbose=verbose)


# --- Exercise 7.2: the distribution that top-k sampling draws from -------------------------------


def _top_k_probs_reference(logits, k, temperature):
    return torch.softmax(top_k_logits(logits, k) / temperature, dim=-1)


def _logits(b, v, *, seed, scale=2.0, grading=None):
    g = case_generator(seed, grading)
    return scale * torch.randn(b, v, generator=g, dtype=torch.float64)


def _top_k_cases(seed: int | None = None) -> list[Case]:
    def _logits_(b, v, *, seed_):
        return _logits(b, v, seed=seed_, grading=seed)

    return [
        Case("one row, k = 3, τ = 1", (_logits_(1, 8, seed_=0), 3, 1.0),
             hint="keep the 3 largest logits of the row; every other token gets probability 0, "
                  "and the kept ones sum to 1."),
        Case("k = v keeps everything: the plain softmax", (_logits_(2, 8, seed_=1), 8, 1.0)),
        Case("k = 1 is greedy: all mass on the arg-max", (_logits_(3, 8, seed_=2), 1, 1.0),
             hint="with k = 1 the answer is one-hot at each row's largest logit."),
        Case("a low temperature, τ = 0.5", (_logits_(2, 10, seed_=3), 4, 0.5),
             hint="divide the logits by τ before the softmax: τ < 1 sharpens the distribution."),
        Case("a high temperature, τ = 2, many rows", (_logits_(16, 65, seed_=4), 10, 2.0),
             hint="work row by row (dim=-1): each row keeps its own top k."),
    ]


def check_top_k_probs(fn, *, verbose: bool = True, seed: int | None = None,
                      cases: list[Case] | None = None) -> Report:
    """Exercise 7.2: ``fn(logits (b, v), k, temperature) -> probabilities (b, v)``."""
    cases = _top_k_cases(seed) if cases is None else cases
    return check_function(fn, _top_k_probs_reference, cases,
                          title="Exercise 7.2 (top-k sampling's distribution)",
                          rtol=1e-9, atol=1e-12, verbose=verbose)


# --- Exercise 7.3: predict, then measure the KV cache ------------------------------------------


@torch.no_grad()
def kv_cache_bytes(t: int, *, n_layers: int = 4, n_heads: int = 4, d_model: int = 128,
                   seed: int = 0) -> int:
    """Bytes held by the KV caches of the chapter's GPT (float32) after reading t tokens:
    measured on a model with a context of t tokens, from the caches themselves."""
    torch.manual_seed(seed)
    model = GPT(65, t, n_layers, n_heads, d_model).eval()
    text = torch.randint(65, (1, t), generator=torch.Generator().manual_seed(seed))
    _, state = model.prefill(text)
    return sum(cache.nbytes for cache in state.caches)


def check_kv_cache_bytes(prediction, *, t: int = 1000, verbose: bool = True) -> Report:
    """Exercise 7.3: the KV-cache bytes of the chapter's GPT after t tokens (float32)."""
    return check_value(f"KV-cache bytes after t = {t} tokens", prediction, kv_cache_bytes(t),
                       rtol=1e-3, title="Exercise 7.3 (predict, then measure)",
                       hint="per token and per layer the cache holds one key and one value, "
                            "each d_model = n_heads · d_head numbers (all heads together), "
                            "4 bytes each in float32.", verbose=verbose)
