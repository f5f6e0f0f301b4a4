"""Checkers for Chapter 7, "Next-token prediction"."""

from __future__ import annotations

import math

import torch

from sseq.exercises import Case, Report, check_function, check_value
from sseq.lm import GPT, top_k_logits

__all__ = ["check_bits_and_perplexity", "check_kv_cache_bytes", "check_top_k_probs",
           "kv_cache_bytes"]


# --- Exercise 7.1: bits per character and perplexity ------------------------------------------


def _bits_and_perplexity_reference(nats):
    return nats / math.log(2), math.exp(nats)


def check_bits_and_perplexity(fn, *, verbose: bool = True) -> Report:
    """Exercise 7.1: ``fn(nats) -> (bits_per_char, perplexity)`` for a loss in nats per char."""
    cases = [
        Case("the GPT's validation loss, 1.81 nats", (1.81,),
             hint="a bit is log₂, a nat is ln: bits = nats / ln 2."),
        Case("the uniform model over 65 characters, ln 65 nats", (math.log(65),),
             hint="perplexity = e^loss with the loss in nats (not 2^loss): here it is 65, "
                  "the number of equally likely characters."),
        Case("a perfect model, 0 nats", (0.0,),
             hint="a loss of 0 means certainty: 0 bits, perplexity 1 (one choice)."),
        Case("the bigram model, 2.48 nats", (2.48,)),
        Case("a poor model, 3.5 nats", (3.5,)),
    ]
    return check_function(fn, _bits_and_perplexity_reference, cases,
                          title="Exercise 7.1 (bits per character and perplexity)",
                          rtol=1e-9, atol=1e-12, verbose=verbose)


# --- Exercise 7.2: the distribution that top-k sampling draws from -------------------------------


def _top_k_probs_reference(logits, k, temperature):
    return torch.softmax(top_k_logits(logits, k) / temperature, dim=-1)


def _logits(b, v, *, seed, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(b, v, generator=g, dtype=torch.float64)


def check_top_k_probs(fn, *, verbose: bool = True) -> Report:
    """Exercise 7.2: ``fn(logits (b, v), k, temperature) -> probabilities (b, v)``."""
    cases = [
        Case("one row, k = 3, τ = 1", (_logits(1, 8, seed=0), 3, 1.0),
             hint="keep the 3 largest logits of the row; every other token gets probability 0, "
                  "and the kept ones sum to 1."),
        Case("k = v keeps everything: the plain softmax", (_logits(2, 8, seed=1), 8, 1.0)),
        Case("k = 1 is greedy: all mass on the arg-max", (_logits(3, 8, seed=2), 1, 1.0),
             hint="with k = 1 the answer is one-hot at each row's largest logit."),
        Case("a low temperature, τ = 0.5", (_logits(2, 10, seed=3), 4, 0.5),
             hint="divide the logits by τ before the softmax: τ < 1 sharpens the distribution."),
        Case("a high temperature, τ = 2, many rows", (_logits(16, 65, seed=4), 10, 2.0),
             hint="work row by row (dim=-1): each row keeps its own top k."),
    ]
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
