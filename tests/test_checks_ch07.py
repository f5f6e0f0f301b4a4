"""The Chapter 7 checkers: a correct answer passes, each kind of wrong one is caught."""

from __future__ import annotations

import math

import torch

from sseq.checks import ch07


# --- 7.1 bits per character and perplexity ---------------------------------------------------
def test_bits_and_perplexity_right_answer_passes(capsys):
    assert ch07.check_bits_and_perplexity(lambda nats: (nats / math.log(2), math.exp(nats)))
    assert "all 5 checks pass" in capsys.readouterr().out


def test_bits_and_perplexity_common_mistakes_are_caught():
    base_two = ch07.check_bits_and_perplexity(lambda n: (n / math.log(2), 2 ** (n / math.log(2))),
                                              verbose=False)
    assert base_two  # 2^bits is e^nats: the same perplexity, rightly accepted
    times = ch07.check_bits_and_perplexity(lambda n: (n * math.log(2), math.exp(n)),
                                           verbose=False)
    assert not times and times.n_passed == 1 and "bits = nats / ln 2" in str(times)
    wrong_base = ch07.check_bits_and_perplexity(lambda n: (n / math.log(2), 2**n), verbose=False)
    assert not wrong_base and "not 2^loss" in str(wrong_base)


def test_bits_and_perplexity_stub_is_reported():
    def todo(nats):
        raise NotImplementedError

    assert "not implemented yet" in str(ch07.check_bits_and_perplexity(todo, verbose=False))


# --- 7.2 top-k ------------------------------------------------------------------------------------
def top_k_right(logits, k, temperature):
    kth = logits.topk(k, dim=-1).values[..., -1:]
    return torch.softmax(logits.masked_fill(logits < kth, -math.inf) / temperature, dim=-1)


def top_k_renormalized_after(logits, k, temperature):  # zero then renormalize: also right
    p = torch.softmax(logits / temperature, dim=-1)
    kth = p.topk(k, dim=-1).values[..., -1:]
    p = p.masked_fill(p < kth, 0.0)
    return p / p.sum(-1, keepdim=True)


def test_top_k_right_answers_pass():
    assert ch07.check_top_k_probs(top_k_right, verbose=False)
    assert ch07.check_top_k_probs(top_k_renormalized_after, verbose=False)


def test_top_k_mistakes_are_caught():
    def not_renormalized(logits, k, temperature):
        p = torch.softmax(logits / temperature, dim=-1)
        return p.masked_fill(p < p.topk(k, dim=-1).values[..., -1:], 0.0)

    report = ch07.check_top_k_probs(not_renormalized, verbose=False)
    assert not report and report.n_passed == 1  # only k = v, where nothing is removed

    def temperature_after(logits, k, temperature):
        return top_k_right(logits, k, 1.0) ** (1 / temperature)

    report = ch07.check_top_k_probs(temperature_after, verbose=False)
    assert not report and "before the softmax" in str(report)

    def whole_batch(logits, k, temperature):  # one top k over all rows together
        kth = logits.flatten().topk(k).values[-1]
        return torch.softmax(logits.masked_fill(logits < kth, -math.inf) / temperature, -1)

    report = ch07.check_top_k_probs(whole_batch, verbose=False)
    assert not report and "row by row" in str(report)


# --- 7.3 the KV cache --------------------------------------------------------------------------
def test_kv_cache_bytes_is_measured_from_the_caches():
    assert ch07.kv_cache_bytes(10) == 2 * 4 * 128 * 4 * 10
    assert ch07.kv_cache_bytes(7, n_layers=2, n_heads=2, d_model=16) == 2 * 2 * 16 * 4 * 7


def test_kv_cache_prediction():
    assert ch07.check_kv_cache_bytes(2 * 4 * 128 * 4 * 1000, verbose=False)
    per_head = ch07.check_kv_cache_bytes(2 * 4 * 32 * 4 * 1000, verbose=False)
    assert not per_head and "all heads together" in str(per_head)
    assert not ch07.check_kv_cache_bytes(4 * 128 * 4 * 1000, verbose=False)  # keys only
    assert "no answer yet" in str(ch07.check_kv_cache_bytes(..., verbose=False))
