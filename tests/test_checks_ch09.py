"""The Chapter 9 checkers: a correct answer passes (book and graded cases), each named mistake
is caught and recognised."""

from __future__ import annotations

import math

import torch

from sseq.checks import ch09


def addressing_right(memory, key, beta):
    cos = torch.nn.functional.cosine_similarity(memory, key[:, None, :], dim=-1, eps=1e-30)
    return torch.softmax(beta[:, None] * cos, dim=-1)


def addressing_dot(memory, key, beta):
    return torch.softmax(beta[:, None] * (memory @ key[:, :, None])[..., 0], dim=-1)


def rag_right(scores, logprobs):
    return torch.logsumexp(torch.log_softmax(scores, -1) + logprobs.sum(-1), dim=-1)


def rag_naive(scores, logprobs):  # probabilities: underflows on the long answer
    prior = torch.softmax(scores, -1)
    return torch.log((prior * logprobs.exp().prod(-1)).sum(-1))


def drops_right(expert, n_experts, capacity_factor):
    cap = math.ceil(capacity_factor * len(expert) / n_experts)
    onehot = torch.nn.functional.one_hot(expert, n_experts)
    return (onehot.cumsum(0) * onehot).sum(-1) > cap


def drops_loop(expert, n_experts, capacity_factor):
    cap, load, out = math.ceil(capacity_factor * len(expert) / n_experts), {}, []
    for e in expert.tolist():
        load[e] = load.get(e, 0) + 1
        out.append(load[e] > cap)
    return torch.tensor(out)


def test_right_answers_pass_book_and_graded_cases(capsys):
    for check, fn in ((ch09.check_content_addressing, addressing_right),
                      (ch09.check_rag_marginal, rag_right),
                      (ch09.check_switch_drops, drops_right),
                      (ch09.check_switch_drops, drops_loop)):
        assert check(fn)
        assert "checks pass" in capsys.readouterr().out
        for seed in (1, 2):
            assert check(fn, verbose=False, seed=seed)


def test_addressing_accepts_any_small_epsilon_in_the_cosine():
    # the statement allows cos = k·M(i) / (‖k‖ ‖M(i)‖ + ε) with a small ε; 1e-6 shifts the
    # answers by ~1e-4 relative on the book's cases, and must still pass
    for eps in (1e-8, 1e-6):
        def answer(memory, key, beta, eps=eps):
            dot = (memory @ key[:, :, None])[..., 0]
            cos = dot / (memory.norm(dim=-1) * key.norm(dim=-1, keepdim=True) + eps)
            return torch.softmax(beta[:, None] * cos, dim=-1)
        for seed in (None, 1, 2):
            assert ch09.check_content_addressing(answer, verbose=False, seed=seed), eps


def test_graded_cases_differ_from_the_book_cases():
    book, graded = ch09._addressing_cases(), ch09._addressing_cases(seed=1)
    assert not torch.equal(book[0].args[0], graded[0].args[0])
    book, graded = ch09._rag_cases(), ch09._rag_cases(seed=3)
    assert not torch.equal(book[0].args[1], graded[0].args[1])
    book, graded = ch09._switch_cases(), ch09._switch_cases(seed=3)
    assert not torch.equal(book[3].args[0], graded[3].args[0])


def test_mistakes_fail_and_are_named(capsys):
    assert not ch09.check_content_addressing(addressing_dot)
    assert "a softmax of dot products" in capsys.readouterr().out
    assert not ch09.check_rag_marginal(rag_naive)
    out = capsys.readouterr().out
    assert "long answer" in out
    for mistake in ch09.RAG_MISTAKES + ch09.SWITCH_MISTAKES + ch09.ADDRESSING_MISTAKES:
        check = (ch09.check_rag_marginal if mistake in ch09.RAG_MISTAKES else
                 ch09.check_switch_drops if mistake in ch09.SWITCH_MISTAKES else
                 ch09.check_content_addressing)
        assert not check(mistake.answer)
        assert mistake.name in capsys.readouterr().out, mistake.name


def test_an_instructor_can_pass_their_own_cases():
    cases = ch09._switch_cases()[:1]
    assert ch09.check_switch_drops(drops_right, verbose=False, cases=cases)
