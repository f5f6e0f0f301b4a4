"""Checkers for Chapter 9, "Memory beyond the state".

Each checker takes ``seed=`` (another draw of the hidden cases, for grading) or ``cases=``
(an instructor's own); the book's cases are the default.
"""

from __future__ import annotations

import torch

from sseq.exercises import Case, Mistake, Report, case_generator, check_function
from sseq.memory_aug import ntm, rag, switch

__all__ = ["check_content_addressing", "check_rag_marginal", "check_switch_drops"]


def _randn(*shape, seed: int, grading: int | None, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(*shape, generator=case_generator(seed, grading),
                               dtype=torch.float64)


# --- Exercise 9.1: content-based addressing ----------------------------------------------------


def _addressing_cases(seed: int | None = None) -> list[Case]:
    memory = _randn(2, 6, 4, seed=0, grading=seed)
    return [
        Case("2 memories of 6 slots × 4, β = 1 and 5",
             (memory, _randn(2, 4, seed=1, grading=seed),
              torch.tensor([1.0, 5.0], dtype=torch.float64))),
        Case("β = 0: every slot equally likely",
             (memory, _randn(2, 4, seed=2, grading=seed), torch.zeros(2, dtype=torch.float64)),
             hint="with β = 0 the weighting is uniform, whatever the key."),
        Case("slots of very different lengths",
             (memory * torch.tensor([0.01, 1, 100, 1, 1, 10], dtype=torch.float64)[None, :, None],
              _randn(2, 4, seed=3, grading=seed), torch.tensor([3.0, 3.0], dtype=torch.float64)),
             hint="the similarity is a cosine: divide the dot product by both lengths, so a "
                  "long slot is not preferred for its length."),
        Case("a key equal to a slot, β = 20",
             (memory, memory[:, 2].clone(), torch.tensor([20.0, 20.0], dtype=torch.float64)),
             hint="the slot the key equals has cosine 1: the weighting should peak there."),
        # a loop over its 32 slots runs at least 32 lines of Python (a comprehension one a
        # slot, a for statement two); a whole-tensor answer, a handful
        Case("a batch of 8, 32 slots × 16",
             (_randn(8, 32, 16, seed=4, grading=seed), _randn(8, 16, seed=5, grading=seed),
              _randn(8, seed=6, grading=seed).abs() * 4), max_lines=30,
             hint="no loop over slots: the dot products are one batched matrix product."),
    ]


ADDRESSING_MISTAKES = (
    Mistake("a softmax of dot products", "the NTM compares directions: divide by ‖k‖ ‖M(i)‖.",
            lambda M, k, beta: torch.softmax(beta[:, None] * (M @ k[:, :, None])[..., 0], -1)),
    Mistake("the cosines without β", "β sharpens the weighting: softmax(β · cos).",
            lambda M, k, beta: torch.softmax(
                torch.nn.functional.cosine_similarity(M, k[:, None], dim=-1), -1)),
    Mistake("the softmax over the wrong axis", "normalise over the slots n (dim=-1 of (b, n)).",
            lambda M, k, beta: torch.softmax(
                beta[:, None] * torch.nn.functional.cosine_similarity(M, k[:, None], dim=-1),
                0)),
)


def check_content_addressing(fn, *, verbose: bool = True, seed: int | None = None,
                             cases: list[Case] | None = None) -> Report:
    """Exercise 9.1: ``fn(memory (b, n, m), key (b, m), beta (b,)) -> w (b, n)``,
    w(i) = softmax_i(β · cos(k, M(i))).

    The reference divides by ``‖k‖ ‖M(i)‖ + 1e-8``; the tolerance (relative 1e-4) accepts any
    small ε the statement allows (up to about 1e-6), and still catches every named mistake."""
    return check_function(fn, ntm.content_addressing,
                          _addressing_cases(seed) if cases is None else cases,
                          title="Exercise 9.1 (content-based addressing)", rtol=1e-4,
                          atol=1e-9, forbid=(ntm.content_addressing, ntm.address),
                          mistakes=ADDRESSING_MISTAKES, verbose=verbose)


# --- Exercise 9.2: the RAG marginal -------------------------------------------------------------


def _logprobs(*shape, seed, grading):
    return torch.log_softmax(_randn(*shape, 5, seed=seed, grading=grading, scale=2), -1)[..., 0]


def _rag_cases(seed: int | None = None) -> list[Case]:
    return [
        Case("one question, 3 documents, a 4-token answer",
             (_randn(1, 3, seed=10, grading=seed), _logprobs(1, 3, 4, seed=11, grading=seed))),
        Case("one document: the plain likelihood",
             (_randn(2, 1, seed=12, grading=seed), _logprobs(2, 1, 3, seed=13, grading=seed)),
             hint="with one document p(z | x) = 1 and the answer is Σ_t log p(y_t | x, z)."),
        Case("equal scores: the average over documents",
             (torch.zeros(2, 4, dtype=torch.float64), _logprobs(2, 4, 2, seed=14, grading=seed)),
             hint="the scores are logits: p(z | x) = softmax(scores), here 1/k each."),
        Case("a long answer (precision)",
             (_randn(3, 5, seed=15, grading=seed), _logprobs(3, 5, 400, seed=16, grading=seed)),
             hint="a product of 400 probabilities underflows: stay in log space and use "
                  "torch.logsumexp."),
    ]


RAG_MISTAKES = (
    Mistake("RAG-token's marginal", "the exercise asks for RAG-sequence: one document for the "
            "whole answer — sum over z the product over t, not the other way round.",
            rag.rag_token),
    Mistake("the scores used as probabilities", "turn the scores into p(z | x) with a softmax.",
            lambda s, lp: torch.logsumexp(torch.log(s.clamp_min(1e-300)) + lp.sum(-1), -1)),
    Mistake("the top document only", "marginalise: sum over every retrieved document.",
            lambda s, lp: lp.sum(-1).gather(1, s.argmax(1, keepdim=True))[:, 0]),
)


def check_rag_marginal(fn, *, verbose: bool = True, seed: int | None = None,
                       cases: list[Case] | None = None) -> Report:
    """Exercise 9.2: ``fn(doc_scores (b, k), token_logprobs (b, k, l)) -> log p(y | x) (b,)``
    for RAG-sequence."""
    return check_function(fn, rag.rag_sequence, _rag_cases(seed) if cases is None else cases,
                          title="Exercise 9.2 (the RAG marginal)", rtol=1e-9, atol=1e-9,
                          forbid=(rag.rag_sequence, rag.rag_sequence_ref),
                          mistakes=RAG_MISTAKES, verbose=verbose)


# --- Exercise 9.3: which tokens a Switch layer drops -------------------------------------------


def _experts(t, e, seed, grading, skew=0.0):
    weights = torch.softmax(skew * torch.arange(e, dtype=torch.float64), 0)
    return torch.multinomial(weights, t, replacement=True, generator=case_generator(seed, grading))


def _switch_cases(seed: int | None = None) -> list[Case]:
    return [
        Case("the chapter's example: 8 tokens, 2 experts, factor 1",
             (torch.tensor([0, 0, 1, 0, 0, 1, 0, 0]), 2, 1.0),
             hint="capacity = ⌈1.0 · 8 / 2⌉ = 4: expert 0 takes its first 4 tokens."),
        Case("capacity factor 1.5 rounds up",
             (_experts(10, 4, 20, seed, skew=1.0), 4, 1.5),
             hint="capacity = ⌈1.5 · 10 / 4⌉ = ⌈3.75⌉ = 4 (math.ceil)."),
        Case("a large factor drops nothing", (_experts(12, 3, 21, seed), 3, 3.0)),
        Case("first come, first served", (_experts(64, 8, 22, seed, skew=0.5), 8, 0.5),
             hint="the tokens an expert keeps are the first ones routed to it, in token order."),
        Case("all tokens to one expert", (torch.zeros(9, dtype=torch.long), 3, 1.0)),
    ]


def _dropped_at(expert, n_experts, cap):
    position = torch.tensor([int((expert[:t] == expert[t]).sum()) for t in range(len(expert))])
    return position >= cap


SWITCH_MISTAKES = (
    Mistake("capacity rounded down", "the capacity is ⌈factor · T / E⌉, rounded up.",
            lambda ex, e, f: _dropped_at(ex, e, int(f * len(ex) / e))),
    Mistake("the last tokens kept instead of the first", "an expert fills up in token order.",
            lambda ex, e, f: _dropped_at(ex.flip(0), e, switch.capacity(len(ex), e, f)).flip(0)),
    Mistake("the kept tokens, not the dropped ones", "return True where a token is dropped.",
            lambda ex, e, f: ~_dropped_at(ex, e, switch.capacity(len(ex), e, f))),
)


def check_switch_drops(fn, *, verbose: bool = True, seed: int | None = None,
                       cases: list[Case] | None = None) -> Report:
    """Exercise 9.3: ``fn(expert (T,), n_experts, capacity_factor) -> dropped (T,) bool``."""
    return check_function(fn, switch.dropped_tokens,
                          _switch_cases(seed) if cases is None else cases,
                          title="Exercise 9.3 (the tokens a Switch layer drops)",
                          forbid=(switch.dropped_tokens,), mistakes=SWITCH_MISTAKES,
                          verbose=verbose)
