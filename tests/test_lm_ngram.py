"""sseq.lm.ngram: Kneser–Ney against a float64 dictionary oracle; distributions sum to one."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch

from sseq.lm import KneserNey, corpus, generate


def _discounts(counter: Counter) -> list[float]:
    n = [sum(1 for c in counter.values() if c == j) for j in (1, 2, 3, 4)]
    if n[0] == 0 or n[1] == 0:
        return [0.75] * 3
    y = n[0] / (n[0] + 2 * n[1])
    out = []
    for j in (1, 2, 3):
        d = j - (j + 1) * y * n[j] / n[j - 1] if n[j - 1] else 0.75
        out.append(min(max(d, 0.0), float(j)))
    return out


class Oracle:
    """Interpolated modified Kneser–Ney written from Chen & Goodman's equations, with
    dictionaries and a recursion, one probability at a time."""

    def __init__(self, ids, v, order):
        self.v = v
        ids = tuple(int(i) for i in ids)
        self.raw = {k: Counter(ids[i:i + k] for i in range(len(ids) - k + 1))
                    for k in range(1, order + 1)}
        # continuation count of g: the distinct tokens seen just before g
        self.cont = {k: Counter(g[1:] for g in self.raw[k + 1]) for k in range(1, order)}
        self.D = {("raw", k): _discounts(c) for k, c in self.raw.items()}
        self.D.update({("cont", k): _discounts(c) for k, c in self.cont.items()})

    def prob(self, w, h, top):
        k = len(h) + 1
        if k == 0 or top == 0:
            return 1.0 / self.v
        kind = "raw" if k == top else "cont"
        counts = self.raw[k] if kind == "raw" else self.cont[k]
        D = self.D[(kind, k)]
        row = [counts.get((*h, x), 0) for x in range(self.v)]
        total = sum(row)
        lower = self.prob(w, h[1:], top) if k > 1 else 1.0 / self.v
        if total == 0:
            return lower
        gamma = sum(D[min(c, 3) - 1] for c in row if c) / total
        c = row[w]
        return (max(c - D[min(c, 3) - 1], 0.0) if c else 0.0) / total + gamma * lower

    def log_prob(self, ids, order):
        ids = [int(i) for i in ids]
        out = []
        for t in range(1, len(ids)):
            h = tuple(ids[max(0, t - order + 1):t]) if order > 1 else ()
            out.append(math.log(self.prob(ids[t], h, min(order, len(h) + 1))))
        return np.array(out)


@pytest.fixture(scope="module")
def small():
    c = corpus.shakespeare()
    train, held = c.train[:3000].numpy(), c.val[:200].numpy()
    return train, held, KneserNey(5, 65).fit(train), Oracle(train, 65, 5)


@pytest.mark.parametrize("order", [0, 1, 2, 3, 5])
def test_kneser_ney_matches_the_dictionary_oracle(small, order):
    train, held, model, oracle = small
    for text in (held, train[:150]):
        got = model.log_prob(text, order)
        if order == 0:
            np.testing.assert_allclose(got, -math.log(65))
        else:
            np.testing.assert_allclose(got, oracle.log_prob(text, order), rtol=1e-12, atol=0)


@pytest.mark.parametrize("order", [0, 1, 2, 3, 4, 5])
def test_every_distribution_sums_to_one(small, order):
    _, held, model, _ = small
    g = torch.Generator().manual_seed(order)
    contexts = [torch.as_tensor(held[:40]).view(10, 4),              # seen and unseen contexts
                torch.randint(65, (20, 6), generator=g),               # mostly unseen
                torch.zeros(3, 0, dtype=torch.long)]                   # no context at all
    for context in contexts:
        p = model.distribution(context, order)
        assert p.shape == (len(context), 65) and (p > 0).all()
        np.testing.assert_allclose(p.sum(1), 1.0, rtol=0, atol=1e-12)


def test_log_prob_reads_the_distribution_at_the_observed_token(small):
    _, held, model, _ = small
    lp = model.log_prob(held[:30], 4)
    for t in range(1, 30):
        p = model.distribution(held[None, max(0, t - 3):t], 4)[0, held[t]]
        assert lp[t - 1] == pytest.approx(math.log(p), rel=1e-12)


def test_more_context_fits_the_training_text_better_and_held_out_text_only_up_to_a_point():
    c = corpus.shakespeare()
    model = KneserNey(8, 65).fit(c.train[:200_000])
    train = [-model.log_prob(c.train[:20_000], n).mean() for n in range(9)]
    val = [-model.log_prob(c.val[:20_000], n).mean() for n in range(9)]
    # ever lower on the text it counted
    assert all(a > b for a, b in zip(train, train[1:], strict=False))
    assert val[0] == pytest.approx(math.log(65)) and val[2] < val[1] < val[0]
    assert min(val) < val[-1]  # held out: the best order is not the largest one


def test_sampler_generates_through_the_common_interface(small):
    _, held, model, _ = small
    tok = corpus.shakespeare().tokenizer
    text = generate(model.sampler(3), "ROMEO:", 40, seed=1, tokenizer=tok)
    assert text.startswith("ROMEO:") and len(text) == 46
    assert text == generate(model.sampler(3), "ROMEO:", 40, seed=1, tokenizer=tok)
    # the slow way (re-reading the text each time) draws the same characters
    assert text == generate(model.sampler(3), "ROMEO:", 40, seed=1, cache=False, tokenizer=tok)


def test_argument_checks(small):
    _, held, model, _ = small
    with pytest.raises(ValueError, match=r"order must be an int in \[1, 10\] for vocab_size = "
                                         r"65, got 11"):
        KneserNey(11, 65)
    with pytest.raises(ValueError, match="vocab_size must be an int >= 2"):
        KneserNey(2, 1)
    with pytest.raises(RuntimeError, match="not fitted"):
        KneserNey(2, 65).log_prob(held)
    with pytest.raises(ValueError, match=r"order must be an int in \[0, 5\], got 6"):
        model.log_prob(held, 6)
    with pytest.raises(ValueError, match=r"ids must lie in \[0, vocab_size\) = \[0, 65\)"):
        model.log_prob(np.array([0, 70]))
    with pytest.raises(TypeError, match="ids must hold integer token ids, got dtype float64"):
        model.log_prob(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="context must have shape"):
        model.distribution(held[:4])
    with pytest.raises(ValueError, match="ids must hold more than order = 5 tokens"):
        KneserNey(5, 65).fit(held[:5])


def test_distribution_matches_the_oracle_for_every_history_length(small):
    """Every next-token probability after contexts of 0 to 6 tokens (seen and unseen, shorter
    and longer than n − 1) is the oracle's, for each order; log_prob of texts shorter than the
    order too (their targets have short histories)."""
    train, held, _, oracle = small
    model = KneserNey(5, 65).fit(train)  # fitted here, so that mutation testing links fit to it
    contexts = [held[10:10 + ell] for ell in range(7)] + [np.array([64, 64, 63, 1])]
    for order in range(6):
        for context in contexts:
            got = model.distribution(context[None], order)[0]
            h = tuple(int(t) for t in context[len(context) - min(order - 1, len(context)):]) \
                if order > 1 else ()
            expected = [oracle.prob(w, h, min(order, len(h) + 1)) for w in range(65)]
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)
        for ell in range(2, 7):
            text = held[20:20 + ell]
            expected = oracle.log_prob(text, order) if order else np.full(ell - 1, -math.log(65))
            np.testing.assert_allclose(model.log_prob(text, order), expected, rtol=1e-12)


def test_discounts_from_the_count_of_counts_by_hand():
    """Chen & Goodman's D_j = j − (j + 1) Y n_{j+1} / n_j with Y = n₁ / (n₁ + 2 n₂), computed by
    hand; a negative estimate clipped to 0; 0.75 where a count-of-counts is missing."""
    from sseq.lm.ngram import _discounts

    # n1 = 3, n2 = 1, n3 = 1, n4 = 2: Y = 3/5; D1 = 1 − 2·(3/5)·(1/3) = 0.6,
    # D2 = 2 − 3·(3/5)·1 = 0.2, D3+ = 3 − 4·(3/5)·2 = −1.8 → 0
    np.testing.assert_allclose(_discounts(np.array([1, 1, 1, 2, 3, 4, 4, 9])), [0.6, 0.2, 0.0],
                               rtol=1e-12, atol=1e-15)
    # n1 = 2, n2 = 1, n3 = 0: Y = 1/2; D1 = 1 − 2·(1/2)·(1/2) = 0.5, D2 = 2 − 0 = 2, D3+ = 0.75
    np.testing.assert_allclose(_discounts(np.array([1, 1, 2])), [0.5, 2.0, 0.75], rtol=1e-12)
    np.testing.assert_array_equal(_discounts(np.array([1, 1, 3])), [0.75] * 3)   # n2 = 0
    np.testing.assert_array_equal(_discounts(np.array([2, 2, 3])), [0.75] * 3)   # n1 = 0


def test_lookup_finds_present_keys_only_even_in_an_empty_table():
    """The binary search finds each key present, reports absent ones (also past the last key
    or in an empty table) as not found."""
    from sseq.lm.ngram import _lookup

    idx, found = _lookup(np.array([2, 5, 9]), np.array([5, 9, 10, 0, 3]))
    assert found.tolist() == [True, True, False, False, False] and idx[:2].tolist() == [1, 2]
    assert found.dtype == bool
    idx, found = _lookup(np.array([], dtype=np.int64), np.array([[1, 2]]))
    assert found.shape == (1, 2) and not found.any() and idx.tolist() == [[0, 0]]
    assert found.dtype == bool
    idx, found = _lookup(np.array([4]), np.array([3, 4, 5]))  # a table of one key
    assert found.tolist() == [False, True, False] and idx.tolist() == [0, 0, 0]


def test_tiny_models_at_the_edges_of_what_they_accept():
    """The largest order whose codes fit in int64 (63 for a binary vocabulary, 7 for 256), the
    shortest training text (order + 1 tokens), unsigned and torch ids, one-token contexts."""
    assert KneserNey(63, 2).order == 63 and KneserNey(7, 256).order == 7
    for v, largest in ((2, 63), (256, 7)):
        with pytest.raises(ValueError, match=rf"^order must be an int in \[1, {largest}\] for "
                                             rf"vocab_size = {v}, got {largest + 1}$"):
            KneserNey(largest + 1, v)
    for bad in (0, True, 2.0):
        with pytest.raises(ValueError, match=rf"^order must be an int in \[1, 10\] for "
                                             rf"vocab_size = 65, got {bad}$"):
            KneserNey(bad, 65)
    for bad in (True, 2.0):
        with pytest.raises(ValueError, match=rf"^vocab_size must be an int >= 2, got {bad}$"):
            KneserNey(2, bad)
    ids = [0, 1, 2]
    model = KneserNey(2, 3).fit(np.array(ids, dtype=np.uint8))
    oracle = Oracle(ids, 3, 2)
    for text in ([0, 1], [2, 0, 1, 1], [1, 2]):
        np.testing.assert_allclose(model.log_prob(torch.tensor(text)), oracle.log_prob(text, 2),
                                   rtol=1e-12)
    p = model.distribution(torch.tensor([[2], [0]]))
    np.testing.assert_allclose(p, [[oracle.prob(w, (c,), 2) for w in range(3)] for c in (2, 0)],
                               rtol=1e-12)
    np.testing.assert_allclose(model.distribution(np.array([[1, 0]]), 1)[0],
                               [oracle.prob(w, (), 1) for w in range(3)], rtol=1e-12)
    assert model.sampler().order == 2 and model.sampler(1).order == 1
    unigram = KneserNey(1, 3).fit([1, 1, 1, 2])  # order 1: one table, of two tokens
    np.testing.assert_allclose(unigram.log_prob([0, 1, 2, 0]),
                               Oracle([1, 1, 1, 2], 3, 1).log_prob([0, 1, 2, 0], 1), rtol=1e-12)
    np.testing.assert_allclose(KneserNey(1, 3).fit([2, 2]).distribution([[0]])[0],
                               [0.125, 0.125, 0.75], rtol=1e-12)
    # c(2) = 2 of 2 tokens, D = 0.75 (no singletons to estimate it): p(2) = (2 − 0.75) / 2 +
    # γ / 3 with γ = 0.75 / 2, so p(2) = 0.625 + 0.125 and p(0) = p(1) = 0.125
    with pytest.raises(ValueError, match=r"^ids must lie in \[0, vocab_size\) = \[0, 3\), got "
                                         r"values from 0 to 5$"):
        KneserNey(2, 3).fit([0, 5, 1])
    with pytest.raises(TypeError, match=r"^ids must hold integer token ids, got dtype float64$"):
        KneserNey(2, 3).fit([0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match=r"^ids must hold more than order = 2 tokens, got 2$"):
        KneserNey(2, 3).fit([0, 1])
    with pytest.raises(ValueError, match=r"^ids must hold at least 2 tokens \(one target\), "
                                         r"got 1$"):
        model.log_prob([1])
    with pytest.raises(ValueError, match=r"^ids must lie in \[0, vocab_size\) = \[0, 3\), got "
                                         r"values from -1 to 2$"):
        model.log_prob([2, -1])
    with pytest.raises(ValueError, match=r"^context must lie in \[0, vocab_size\) = \[0, 3\), "
                                         r"got values from 0 to 3$"):
        model.distribution([[0, 3]])
    with pytest.raises(TypeError, match=r"^context must hold integer token ids, got dtype "
                                        r"float32$"):
        model.distribution(torch.zeros(1, 2))
    with pytest.raises(ValueError, match=r"^context must have shape \(b, l\), got \(2,\)$"):
        model.distribution([0, 1])
    for bad in (3, -1, True, 1.0):
        with pytest.raises(ValueError, match=rf"^order must be an int in \[0, 2\], got {bad}$"):
            model.log_prob([0, 1], bad)
    with pytest.raises(RuntimeError, match=r"^the model is not fitted: call fit\(train_ids\) "
                                           r"first$"):
        KneserNey(2, 3).distribution([[0]])


def test_refitting_forgets_the_previous_text():
    """fit() starts from empty tables: a model fitted on one text and then another gives the
    probabilities of a model fitted on the second only."""
    a, b = [0, 1, 2, 0, 1, 2, 2, 1], [2, 2, 0, 1, 1, 0, 2, 0, 0]
    refit = KneserNey(3, 3).fit(a).fit(b)
    fresh = KneserNey(3, 3).fit(b)
    for order in (1, 2, 3):
        np.testing.assert_array_equal(refit.log_prob(a, order), fresh.log_prob(a, order))
    np.testing.assert_allclose(fresh.log_prob(a, 3), Oracle(b, 3, 3).log_prob(a, 3), rtol=1e-12)


def test_the_largest_order_keeps_exact_integer_codes():
    """Order 60 over a binary vocabulary: codes up to 2⁶⁰ are exact int64 (a float code would
    merge 60-grams that differ in their last tokens); every probability is the oracle's."""
    bits = torch.randint(2, (400,), generator=torch.Generator().manual_seed(0)).numpy()
    model = KneserNey(60, 2).fit(bits[:300])
    oracle = Oracle(bits[:300], 2, 60)
    for text in (bits[:80], bits[320:]):  # seen (long contexts found) and unseen
        np.testing.assert_allclose(model.log_prob(text, 60), oracle.log_prob(text, 60),
                                   rtol=1e-12)


def test_sampler_state_after_a_prompt_shorter_than_the_history(small):
    """A prompt shorter than n − 1 tokens is kept whole: cached sampling from a 1- or 2-token
    prompt with an order-5 model draws what re-reading the text draws."""
    _, _, model, _ = small
    for prompt in (torch.tensor([[20]]), torch.tensor([[46, 43], [1, 0]])):
        for seed in range(3):
            fast = generate(model.sampler(5), prompt, 12, seed=seed)
            slow = generate(model.sampler(5), prompt, 12, seed=seed, cache=False)
            assert torch.equal(fast, slow)
