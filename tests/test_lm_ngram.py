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
