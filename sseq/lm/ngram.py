"""n-gram language models with interpolated Kneser–Ney smoothing: the baselines that set the scale.

An n-gram model predicts the next character from the previous n − 1 only, by counting. Raw
counts give probability zero to anything not seen in training, so every n-gram model is
*smoothed*. Interpolated Kneser–Ney (Kneser & Ney, 1995; the "modified" discounts of Chen &
Goodman, 1999), for a context h and its shortened context h' (h without its first character):

    p_k(w | h) = max(c(h w) − D(c(h w)), 0) / c(h •)  +  γ(h) · p_{k−1}(w | h')
    γ(h)       = (D₁ N₁(h •) + D₂ N₂(h •) + D₃₊ N₃₊(h •)) / c(h •)

where c(h •) = Σ_w c(h w), N_j(h •) counts the w with c(h w) = j (N₃₊: at least 3), and
p₀(w) = 1/v. If the context never occurred, p_k = p_{k−1}. The top order counts occurrences;
every lower order counts *continuations* — c(g) = the number of distinct characters seen just
before g — because a lower order is only consulted when the longer context is rare, and then
what matters is in how many contexts g occurs, not how often. The discounts come from the
count-of-counts n_j (k-grams seen exactly j times): Y = n₁ / (n₁ + 2 n₂),
D_j = j − (j + 1) Y n_{j+1} / n_j. The discounted mass is exactly γ(h), so every p_k sums to one.

Order 0 is the uniform model, order 1 the unigram model (absolute discounting towards uniform),
order 2 the bigram model. One fit to order N holds every lower order: ``log_prob(ids, order=n)``
evaluates the order-n model for any n ≤ N.

Implementation: a k-gram is an integer in base v (``code = Σ_j w_j v^(k−1−j)``), counted with
``numpy.unique`` and looked up with ``numpy.searchsorted``, so fitting a million characters to
order 10 takes seconds. :meth:`KneserNey.sampler` gives an order-n model the ``prefill`` /
``step`` methods that :func:`sseq.lm.generate` calls, so n-gram text is sampled like a network's.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["KneserNey", "NGramSampler"]


def _codes(ids: np.ndarray, k: int, v: int) -> np.ndarray:
    """The base-v code of every k-gram ``ids[s: s + k]``: ``(len(ids) − k + 1,)`` int64."""
    codes = np.zeros(len(ids) - k + 1, dtype=np.int64)
    for j in range(k):
        codes = codes * v + ids[j: len(ids) - k + 1 + j]
    return codes


def _lookup(sorted_keys: np.ndarray, keys: np.ndarray):
    """Index of each key in ``sorted_keys`` and whether it is there."""
    idx = np.searchsorted(sorted_keys, keys).clip(max=max(len(sorted_keys) - 1, 0))
    found = sorted_keys[idx] == keys if len(sorted_keys) else np.zeros(keys.shape, bool)
    return idx, found


def _discounts(counts: np.ndarray) -> np.ndarray:
    """Chen & Goodman's D₁, D₂, D₃₊ from the count-of-counts, each clipped to [0, j]."""
    n = [np.count_nonzero(counts == j) for j in range(1, 5)]
    if n[0] == 0 or n[1] == 0:  # too little data to estimate: Kneser–Ney's usual 0.75
        return np.array([0.75, 0.75, 0.75])
    y = n[0] / (n[0] + 2 * n[1])
    d = [j - (j + 1) * y * n[j] / n[j - 1] if n[j - 1] else 0.75 for j in (1, 2, 3)]
    return np.clip(d, 0.0, [1.0, 2.0, 3.0])


class _Table:
    """One order of the model: the counts c(h w) of its k-grams (occurrences at the top order,
    continuations below) and, for each context h, c(h •) = Σ_w c(h w) and γ(h)."""

    def __init__(self, grams: np.ndarray, counts: np.ndarray, v: int):
        self.v = v
        self.grams, self.counts = grams, counts                  # sorted k-gram codes, c(h w)
        self.D = _discounts(counts)                              # (3,) D₁, D₂, D₃₊
        contexts = grams // v                                    # sorted too
        self.contexts, first = np.unique(contexts, return_index=True)
        self.total = np.add.reduceat(counts, first)              # c(h •)
        discounted = self.D[np.minimum(counts, 3) - 1]           # D(c(h w)) of each k-gram
        self.gamma = np.add.reduceat(discounted, first) / self.total  # γ(h)

    def interpolate(self, grams: np.ndarray, lower: np.ndarray) -> np.ndarray:
        """p_k(w | h) for k-gram codes ``grams`` (any shape), given ``lower`` = p_{k−1}."""
        ctx_idx, seen = _lookup(self.contexts, grams // self.v)
        gram_idx, found = _lookup(self.grams, grams)
        c = np.where(found, self.counts[gram_idx], 0)
        D = np.where(c > 0, self.D[np.clip(c, 1, 3) - 1], 0.0)
        total = self.total[ctx_idx]
        p = (c - D) / total + self.gamma[ctx_idx] * lower  # D(c) <= c: c − D is never < 0
        return np.where(seen, p, lower)  # an unseen context leaves the lower order's answer


class KneserNey:
    """An interpolated (modified) Kneser–Ney character model of every order up to ``order``.

    Args:
        order: the largest n (1 ≤ n ≤ the largest whose codes fit in int64: 10 for v = 65).
        vocab_size: v, the number of distinct tokens.
    """

    def __init__(self, order: int, vocab_size: int):
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 2:
            raise ValueError(f"vocab_size must be an int >= 2, got {vocab_size!r}")
        largest = int(np.floor(63 * np.log(2) / np.log(vocab_size)))
        if isinstance(order, bool) or not isinstance(order, int) or not 1 <= order <= largest:
            raise ValueError(f"order must be an int in [1, {largest}] for vocab_size = "
                             f"{vocab_size}, got {order!r}")
        self.order, self.vocab_size = order, vocab_size
        self.raw: list[_Table] = []           # raw[k − 1]: occurrence counts of k-grams
        self.continuation: list[_Table] = []  # continuation[k − 1]: distinct left neighbours

    def fit(self, ids) -> KneserNey:
        """Count every k-gram (k ≤ order) of the training tokens ``ids`` ``(l,)``; returns self."""
        ids = self._as_ids(ids, "ids")
        if len(ids) <= self.order:
            raise ValueError(f"ids must hold more than order = {self.order} tokens, got "
                             f"{len(ids)}")
        v = self.vocab_size
        self.raw, self.continuation = [], []
        for k in range(1, self.order + 1):
            grams, counts = np.unique(_codes(ids, k, v), return_counts=True)
            self.raw.append(_Table(grams, counts.astype(np.int64), v))
            if k < self.order:  # the top order needs no continuation counts
                # the distinct (k+1)-grams, stripped of their first token: one per left neighbour
                longer = np.unique(_codes(ids, k + 1, v)) % v**k
                grams, counts = np.unique(longer, return_counts=True)
                self.continuation.append(_Table(grams, counts.astype(np.int64), v))
        return self

    def _check_order(self, order):
        if not self.raw:
            raise RuntimeError("the model is not fitted: call fit(train_ids) first")
        order = self.order if order is None else order
        if isinstance(order, bool) or not isinstance(order, int) or \
                not 0 <= order <= self.order:
            raise ValueError(f"order must be an int in [0, {self.order}], got {order!r}")
        return order

    def _as_ids(self, ids, name) -> np.ndarray:
        ids = np.asarray(ids.cpu() if isinstance(ids, torch.Tensor) else ids)
        if ids.dtype.kind not in "iu":
            raise TypeError(f"{name} must hold integer token ids, got dtype {ids.dtype}")
        if ids.size and not 0 <= ids.min() <= ids.max() < self.vocab_size:
            raise ValueError(f"{name} must lie in [0, vocab_size) = [0, {self.vocab_size}), "
                             f"got values from {ids.min()} to {ids.max()}")
        return ids.astype(np.int64)

    def _tables(self, order: int, n_history: int) -> list[_Table]:
        """The tables of orders 1..min(order, n_history + 1): raw counts at the top."""
        top = min(order, n_history + 1)
        return [*self.continuation[: top - 1], self.raw[top - 1]] if top else []

    def log_prob(self, ids, order: int | None = None) -> np.ndarray:
        """log p(ids[t] | the n − 1 tokens before it) for t = 1, ..., l − 1 (natural log).

        The first n − 2 targets have a shorter history and use the model of the order it allows.

        Args:
            ids: ``(l,)`` token ids of a text; order: n (default: the fitted order; 0: uniform).

        Returns:
            ``(l − 1,)`` float64 log-probabilities of the targets ``ids[1:]``.
        """
        order, ids = self._check_order(order), self._as_ids(ids, "ids")
        if len(ids) < 2:
            raise ValueError(f"ids must hold at least 2 tokens (one target), got {len(ids)}")
        p = np.full(len(ids) - 1, 1.0 / self.vocab_size)
        if order == 0:
            return np.log(p)
        for t in range(1, min(order - 1, len(ids))):  # targets with fewer than n − 1 before
            p[t - 1] = self._prob(ids[None, : t + 1], order)[0]
        if len(ids) >= order:
            skip = 1 if order == 1 else 0  # order 1: the window (ids[0],) has no target before
            windows = np.lib.stride_tricks.sliding_window_view(ids, order)[skip:]  # (m, n)
            p[order - 2 + skip:] = self._prob(windows, order)
        return np.log(p)

    def _prob(self, windows: np.ndarray, order: int) -> np.ndarray:
        """p(last token | the others) for each row of ``windows`` ``(m, k)``, k ≤ order."""
        v, k = self.vocab_size, windows.shape[1]
        p = np.full(len(windows), 1.0 / v)
        for j, table in enumerate(self._tables(order, k - 1), start=1):
            p = table.interpolate(_codes_rows(windows[:, k - j:], v), p)
        return p

    def distribution(self, context, order: int | None = None) -> np.ndarray:
        """The whole next-token distribution after each context.

        Args:
            context: ``(b, l)`` token ids (only the last n − 1 matter; l may be 0).
            order: n (default: the fitted order).

        Returns:
            ``(b, v)`` float64 probabilities, each row summing to one.
        """
        order = self._check_order(order)
        context = self._as_ids(context, "context")
        if context.ndim != 2:
            raise ValueError(f"context must have shape (b, l), got {context.shape}")
        v, b = self.vocab_size, len(context)
        history = context[:, context.shape[1] - min(order - 1, context.shape[1]):]
        p = np.full((b, v), 1.0 / v)
        if order == 0:
            return p
        for j, table in enumerate(self._tables(order, history.shape[1]), start=1):
            h = _codes_rows(history[:, history.shape[1] - (j - 1):], v)  # (b,) code of h
            p = table.interpolate(h[:, None] * v + np.arange(v), p)
        return p

    def sampler(self, order: int | None = None) -> NGramSampler:
        """The order-n model (default: the fitted order) as a generator for
        :func:`sseq.lm.generate`."""
        return NGramSampler(self, self._check_order(order))


class NGramSampler:
    """An n-gram model behind the ``prefill`` / ``step`` interface of the chapter's networks.

    Its state is the text so far; only the last n − 1 tokens matter. Logits are log-probabilities.
    """

    context = None  # generate(cache=False) passes the whole text; only its end is read

    def __init__(self, model: KneserNey, order: int):
        self.model, self.order, self.vocab_size = model, order, model.vocab_size

    def prefill(self, idx: torch.Tensor):
        """``(b, l)`` ids → ``(log p (b, v), state)``."""
        logits = torch.from_numpy(np.log(self.model.distribution(idx, self.order)))
        return logits, idx[:, max(idx.shape[1] - self.order + 1, 0):]

    def step(self, token: torch.Tensor, state: torch.Tensor):
        """Append one token ``(b,)``; returns ``(log p (b, v), state)``."""
        return self.prefill(torch.cat([state, token[:, None]], dim=1))


def _codes_rows(rows: np.ndarray, v: int) -> np.ndarray:
    """The base-v code of each row of ``rows`` ``(m, k)``: ``(m,)`` int64 (0 when k = 0)."""
    codes = np.zeros(len(rows), dtype=np.int64)
    for j in range(rows.shape[1]):
        codes = codes * v + rows[:, j]
    return codes
