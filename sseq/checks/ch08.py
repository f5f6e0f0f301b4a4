"""Checkers for Chapter 8, "SSMs vs Transformers".

Each checker takes ``seed=`` (another draw of the hidden cases, for grading) or ``cases=``
(an instructor's own) where its cases are random; the book's cases are the default.
"""

from __future__ import annotations

import math
import random

import torch

from sseq import models, recall_tasks
from sseq.exercises import (
    Case,
    Mistake,
    Report,
    active_seed,
    case_generator,
    check_function,
    check_value,
)
from sseq.tasks import BLANK, IGNORE

__all__ = ["check_copy_ceiling", "check_hybrid_layers", "check_hybrid_state",
           "check_mqar_targets", "copy_ceiling", "hybrid_layers", "mqar_targets"]


def _sizes(seed):
    """Random sizes for a grading draw, or None for the book's cases."""
    s = active_seed(seed)
    return None if s is None else random.Random(s)


# --- Exercise 8.1: the answers of an MQAR sequence ---------------------------------------------


def mqar_targets(inputs: torch.Tensor, n_pairs: int) -> torch.Tensor:
    """The book's reading of MQAR: after each query (a key seen again past the pairs), its
    value; ``IGNORE`` everywhere else. ``inputs (n, l)`` → targets ``(n, l)``."""
    keys, values = inputs[:, 0:2 * n_pairs:2], inputs[:, 1:2 * n_pairs:2]  # (n, pairs)
    rest = inputs[:, 2 * n_pairs:]  # (n, l − 2 pairs)
    match = rest[:, :, None] == keys[:, None, :]  # (n, l', pairs): which key is asked
    asked = match.any(-1) & (rest != BLANK)
    answer = values.gather(1, match.float().argmax(-1))  # (n, l')
    targets = torch.full_like(inputs, IGNORE)
    targets[:, 2 * n_pairs:] = torch.where(asked, answer, IGNORE)
    return targets


def _mqar_cases(seed=None) -> list[Case]:
    g, r = case_generator(808, seed), _sizes(seed)

    def pick(book, low, high):
        return book if r is None else r.randint(low, high)

    def case(name, n, length, pairs, vocab, hint=""):
        return Case(name, (recall_tasks.mqar(n, length, pairs, vocab_size=vocab, seed=g)[0],
                           pairs), hint=hint)

    p, q = pick(4, 2, 6), pick(8, 6, 10)  # each drawn once: the name states the case's size
    return [
        case(f"one sequence, {p} pairs", 1, 8 * p, p, 64,
             hint="the value goes at the query's own position: the model says it right after "
                  "reading the query."),
        case("one pair", 3, 8, 1, 8),
        case(f"a batch, {q} pairs", 16, 64, q, 64,
             hint="score only the queries, past the 2 · n_pairs tokens of pairs; keys and "
                  "values there are not scored."),
        case("Zoology's sizes: 64 pairs in 256 tokens", 4, 256, 64, 8192,
             hint="compare every token past the pairs with every key at once: (n, l', pairs)."),
    ]


def _mqar_shifted(inputs, n_pairs):
    t = mqar_targets(inputs, n_pairs)
    return torch.cat([torch.full_like(t[:, :1], IGNORE), t[:, :-1]], 1)


def _mqar_pairs_scored(inputs, n_pairs):
    t = mqar_targets(inputs, n_pairs)
    t[:, 0:2 * n_pairs:2] = inputs[:, 1:2 * n_pairs:2]
    return t


MQAR_MISTAKES = (
    Mistake("the targets one position late", "a next-token target sits at the query itself: "
            "after reading the key, the model says its value.", _mqar_shifted),
    Mistake("targets inside the pairs", "the pairs are context, not questions: only the "
            "queries after them are scored.", _mqar_pairs_scored),
)


def check_mqar_targets(fn, *, verbose: bool = True, seed: int | None = None,
                       cases: list[Case] | None = None) -> Report:
    """Exercise 8.1: ``fn(inputs (n, l), n_pairs) -> targets (n, l)`` of an MQAR batch."""
    return check_function(fn, mqar_targets, _mqar_cases(seed) if cases is None else cases,
                          title="Exercise 8.1 (MQAR targets)", rtol=0, atol=0,
                          verbose=verbose, mistakes=MQAR_MISTAKES,
                          forbid=(recall_tasks.mqar,))


# --- Exercise 8.2: the most a state of N bits can copy -------------------------------------------


def copy_ceiling(state_bits: float, length: int, n_symbols: int) -> float:
    """The largest fraction of strings of ``length`` symbols (from ``n_symbols``) that a model
    whose state holds ``state_bits`` bits can copy exactly: ``min(1, 2^bits / n^L)``."""
    return 2.0 ** min(0.0, state_bits - length * math.log2(n_symbols))


def _ceiling_cases(seed=None) -> list[Case]:
    r = _sizes(seed)

    def pick(book, low, high):
        return book if r is None else r.randint(low, high)

    # each size drawn once, so that a case's name states the sizes it is run with
    short, n, long, longest = pick(4, 4, 6), pick(8, 5, 12), pick(100, 80, 120), pick(500, 300, 900)
    return [
        Case("a state of 16 bits, 2 letters", (16, 2, 26),
             hint="there are 26² = 676 strings and 2¹⁶ states: every string can get its own."),
        Case(f"16 bits, {short} letters", (16, short, 26),
             hint="2¹⁶ states can tell apart at most 2¹⁶ of the 26^L strings."),
        Case(f"64 bits, 16 letters from {n}", (64, 16, n)),
        Case(f"256 bits, {long} letters", (256, long, 26)),
        Case(f"this chapter's Mamba state in bf16, {longest} letters",
             (2112 * 16, longest, 26),
             hint="2^33792 overflows a float: work with log₂ (bits − L log₂ n), cap it at 0, "
                  "then take 2^that."),
        Case("more bits than strings need", (4096, 100, 26),
             hint="a fraction cannot exceed 1."),
    ]


def _no_cap(bits, length, n):
    return 2.0 ** (bits - length * math.log2(n))


def _ratio(bits, length, n):
    return min(1.0, bits / (length * math.log2(n)))


CEILING_MISTAKES = (
    Mistake("the ratio 2^bits / n^L without the cap at 1", "a fraction of strings is at most "
            "1.", _no_cap),
    Mistake("the ratio of bits to the string's bits", "bits needed and bits held do not "
            "trade linearly: each missing bit halves the strings that fit.", _ratio),
)


def check_copy_ceiling(fn, *, verbose: bool = True, seed: int | None = None,
                       cases: list[Case] | None = None) -> Report:
    """Exercise 8.2: ``fn(state_bits, length, n_symbols) -> the largest copyable fraction``."""
    return check_function(fn, copy_ceiling, _ceiling_cases(seed) if cases is None else cases,
                          title="Exercise 8.2 (the copying ceiling of a state)", rtol=1e-6,
                          atol=0, verbose=verbose, mistakes=CEILING_MISTAKES)


# --- Exercises 8.3 and 8.4: a hybrid's layer list, and what it carries -------------------------


def hybrid_layers(n_layers: int, attention_every: int) -> list[str]:
    """``n_layers`` kinds: layer i (counted from 1) is ``"attention"`` when i is a multiple
    of ``attention_every``, else ``"mamba"`` (Jamba: one attention layer in every 8)."""
    return ["attention" if i % attention_every == 0 else "mamba"
            for i in range(1, n_layers + 1)]


def _hybrid_cases(seed=None) -> list[Case]:
    r = _sizes(seed)
    n, every = (8, 4) if r is None else (r.randint(6, 12), r.randint(2, 5))
    return [
        Case(f"{n} layers, attention every {every}", (n, every),
             hint="count from 1: with every = 4 the 4th and the 8th layers attend."),
        Case("Jamba's ratio: 8 layers, one attends", (8, 8)),
        Case("attention only", (3, 1)),
        Case("no attention (every > n_layers)", (5, 6),
             hint="with every > n_layers no layer index is a multiple: all Mamba."),
    ]


def _zero_based(n, every):
    return ["attention" if i % every == 0 else "mamba" for i in range(n)]


HYBRID_MISTAKES = (
    Mistake("indices counted from 0", "count layers from 1: the first attention layer is "
            "layer `attention_every`, after the Mamba layers that tell it where it is.",
            _zero_based),
)


def check_hybrid_layers(fn, *, verbose: bool = True, seed: int | None = None,
                        cases: list[Case] | None = None) -> Report:
    """Exercise 8.3: ``fn(n_layers, attention_every) -> a list of layer kinds``."""
    return check_function(fn, hybrid_layers, _hybrid_cases(seed) if cases is None else cases,
                          title="Exercise 8.3 (a hybrid's layers)", verbose=verbose,
                          mistakes=HYBRID_MISTAKES)


def check_hybrid_state(prediction, *, t: int = 1000, verbose: bool = True) -> Report:
    """Exercise 8.4: the numbers that ``models.build(hybrid_layers(8, 4), 30, d_model=32,
    d_state=8)`` carries after ``t`` tokens, measured from its generation state."""
    model = models.build(hybrid_layers(8, 4), 30, d_model=32, d_state=8)
    measured = models.state_numbers(model, t)
    mamba = 64 * 8 + 64 * 3  # d_inner = 2 d: the scan state and the convolution's last inputs
    return check_value(f"numbers carried after t = {t} tokens", prediction, measured,
                       rtol=1e-3, title="Exercise 8.4 (predict, then measure)",
                       hint="each attention layer keeps a key and a value of d numbers per "
                            "token; each Mamba layer a fixed state (scan and convolution).",
                       mistakes=(
                           Mistake("the scan state without the convolution's", "a Mamba layer "
                                   "also keeps the last d_conv − 1 inputs of its convolution.",
                                   measured - 6 * 64 * 3),
                           Mistake("keys only", "the cache holds a value per token as well.",
                                   measured - 2 * 32 * t),
                           Mistake("the Mamba layers only", "the attention layers' caches "
                                   "grow with t.", 6 * mamba)),
                       verbose=verbose)
