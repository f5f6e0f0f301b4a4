"""The Chapter 6 checkers: a correct answer passes, each kind of wrong one is caught."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sseq.checks import ch06


# --- 6.1 the causal mask ---------------------------------------------------------------------
def mask_right(l_q, l_k):
    i = torch.arange(l_q)[:, None] + (l_k - l_q)  # query i is token l_k − l_q + i
    return torch.arange(l_k)[None, :] <= i


def mask_top_left(l_q, l_k):  # PyTorch's is_causal alignment: wrong for a cache
    return torch.ones(l_q, l_k, dtype=torch.bool).tril()


def mask_strict(l_q, l_k):  # forgets that a token sees itself
    return torch.ones(l_q, l_k, dtype=torch.bool).tril(l_k - l_q - 1)


def test_causal_mask_right_answer_passes(capsys):
    assert ch06.check_causal_mask(mask_right)
    assert "all 5 checks pass" in capsys.readouterr().out


def test_causal_mask_top_left_alignment_is_caught_with_the_hint():
    report = ch06.check_causal_mask(mask_top_left, verbose=False)
    assert not report and report.n_passed == 2  # right only when l_q = l_k
    assert "✗ one new token after 7 cached ones" in str(report)
    assert "it sees every key" in str(report)


def test_causal_mask_without_the_diagonal_and_wrong_types_are_caught():
    report = ch06.check_causal_mask(mask_strict, verbose=False)
    assert report.n_passed == 0 and "diagonal included" in str(report)
    report = ch06.check_causal_mask(lambda l_q, l_k: mask_right(l_q, l_k).float(),
                                    verbose=False)
    assert not report and "dtype differs: expected torch.bool" in str(report)


def test_causal_mask_stub_is_reported():
    def todo(l_q, l_k):
        raise NotImplementedError

    assert "not implemented yet" in str(ch06.check_causal_mask(todo, verbose=False))


# --- 6.2 the KV-cache formula ----------------------------------------------------------------
def test_kv_cache_formula():
    n_layers, n_kv_heads, d_head, p, tokens = ch06.symbols()
    assert ch06.check_kv_cache_formula(2 * n_layers * n_kv_heads * d_head * p * tokens,
                                       verbose=False)
    forgot_values = ch06.check_kv_cache_formula(n_layers * n_kv_heads * d_head * p * tokens,
                                                verbose=False)
    assert not forgot_values and "differs from the expected result" in str(forgot_values)
    n_heads = ch06.sp.Symbol("n_heads", positive=True)
    query_heads = ch06.check_kv_cache_formula(2 * n_layers * n_heads * d_head * p * tokens,
                                              verbose=False)
    assert not query_heads and "not every query head" in str(query_heads)
    assert "no answer yet" in str(ch06.check_kv_cache_formula(..., verbose=False))


# --- 6.3 linear attention's recurrence ---------------------------------------------------------
def recurrence_right(q, k, v):
    phi_q, phi_k = F.elu(q) + 1, F.elu(k) + 1
    S = torch.zeros(*q.shape[:2], q.shape[-1], v.shape[-1], dtype=q.dtype)
    z = torch.zeros(*q.shape[:2], q.shape[-1], dtype=q.dtype)
    ys = []
    for t in range(q.shape[2]):
        S = S + phi_k[:, :, t, :, None] * v[:, :, t, None, :]
        z = z + phi_k[:, :, t]
        num = torch.einsum("bhd,bhde->bhe", phi_q[:, :, t], S)
        ys.append(num / (phi_q[:, :, t] * z).sum(-1, keepdim=True))
    return torch.stack(ys, dim=2)


def recurrence_state_too_late(q, k, v):  # reads the state before adding token t
    phi_q, phi_k = F.elu(q) + 1, F.elu(k) + 1
    S = torch.zeros(*q.shape[:2], q.shape[-1], v.shape[-1], dtype=q.dtype)
    z = torch.full((*q.shape[:2], q.shape[-1]), 1e-9, dtype=q.dtype)
    ys = []
    for t in range(q.shape[2]):
        num = torch.einsum("bhd,bhde->bhe", phi_q[:, :, t], S)
        ys.append(num / (phi_q[:, :, t] * z).sum(-1, keepdim=True))
        S = S + phi_k[:, :, t, :, None] * v[:, :, t, None, :]
        z = z + phi_k[:, :, t]
    return torch.stack(ys, dim=2)


def recurrence_softmax(q, k, v):  # ordinary causal softmax attention: not linear attention
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def test_linear_recurrence_right_answer_passes():
    assert ch06.check_linear_recurrence(recurrence_right, verbose=False)


def test_linear_recurrence_mistakes_are_caught():
    late = ch06.check_linear_recurrence(recurrence_state_too_late, verbose=False)
    assert not late and "after token t is added" in str(late)
    softmax = ch06.check_linear_recurrence(recurrence_softmax, verbose=False)
    assert softmax.n_passed == 1  # only the single token, where every attention returns v_0
    assert "✓ a single token" in str(softmax)


# --- 6.4 the Performer's error ---------------------------------------------------------------
def test_kernel_error_is_measured_and_falls_like_one_over_sqrt_m():
    ratio = ch06.kernel_error(256) / ch06.kernel_error(64)
    assert ratio == pytest.approx(0.5, rel=0.05)
    assert ch06.kernel_error(64) == pytest.approx(ch06.kernel_error(64))  # seeded
    assert ch06.check_performer_ratio(1 / math.sqrt(4), verbose=False)
    wrong = ch06.check_performer_ratio(0.25, verbose=False)  # 1/m, not 1/√m
    assert not wrong and "like 1/√m" in str(wrong)
    assert "no answer yet" in str(ch06.check_performer_ratio(..., verbose=False))


# --- graded cases: another draw with seed=, an instructor's own with cases= ----------------------
def test_graded_cases_are_another_draw_and_right_answers_still_pass():
    """--seed must change the hidden sizes and data; the book's cases stay the book's."""
    book, again = ch06._causal_mask_cases(), ch06._causal_mask_cases()
    assert [c.args for c in book] == [c.args for c in again]
    assert [c.args for c in book] != [c.args for c in ch06._causal_mask_cases(seed=4)]
    drawn = [c.args for s in range(1, 6) for c in ch06._causal_mask_cases(seed=s)]
    assert all(1 <= l_q <= l_k for l_q, l_k in drawn)  # a cache never has fewer keys than queries
    book_qkv = ch06._recurrence_cases()
    graded = ch06._recurrence_cases(seed=4)
    assert not any(torch.equal(a.args[2], b.args[2]) for a, b in zip(book_qkv, graded, strict=True))
    for seed in (1, 2, 3):
        assert ch06.check_causal_mask(mask_right, verbose=False, seed=seed)
        assert not ch06.check_causal_mask(mask_strict, verbose=False, seed=seed)
        assert ch06.check_linear_recurrence(recurrence_right, verbose=False, seed=seed)
        assert not ch06.check_linear_recurrence(recurrence_state_too_late, verbose=False,
                                                seed=seed)


def test_instructor_cases_replace_the_books():
    from sseq.exercises import Case

    report = ch06.check_causal_mask(mask_right, verbose=False, cases=[Case("mine", (2, 9))])
    assert report and report.lines == ["✓ mine"]
    assert not ch06.check_causal_mask(mask_top_left, verbose=False, cases=[Case("mine", (2, 9))])
