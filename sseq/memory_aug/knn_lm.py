"""The kNN-LM (Khandelwal et al., 2020): a language model that looks its training text up.

A trained language model maps a context to a vector ``h`` (here the one its output layer
reads) and ``h`` to a distribution over the next token. The kNN-LM keeps, besides, a
*datastore* of every training context's vector and the token that followed it,

    keys   k_i = h(c_i)  (N, d)          values   v_i = the token after c_i  (N,)

and at test time finds the ``K`` keys nearest to the query ``q = h(c)`` and votes:

    p_kNN(y | c) ∝ Σ_{i ∈ K nearest} 1[v_i = y] · exp(−‖q − k_i‖² / T)
    p(y | c)     = λ · p_kNN(y | c) + (1 − λ) · p_LM(y | c)

The datastore is memory that grows with the text and costs nothing to train: the network's
state stays the same size, and what it cannot hold is looked up. The search here is exact
(brute force, in chunks); the paper searches 103 M keys approximately with FAISS.

Shapes: ``q`` queries, ``N`` datastore entries, ``d`` key width, ``K`` neighbours,
``v`` vocabulary.
"""

from __future__ import annotations

import math
import numbers

import torch

from sseq.memory_aug.ntm import _check

__all__ = ["interpolate", "knn_distribution", "knn_distribution_ref", "lm_features",
           "nearest", "nearest_by_size"]


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")


@torch.no_grad()
def lm_features(model, ids: torch.Tensor, context: int, batch_size: int = 64, windows=None):
    """The vectors a trained language model's head reads, over a token stream.

    The stream is cut into consecutive windows of ``context`` tokens, as Chapter 7 scores
    its validation loss, so each query sees the context the model was trained with.

    Args:
        model: a :class:`sseq.lm.GPT` (the final layer norm's output) or
            :class:`sseq.lm.LSTMLM` (the last layer's output).
        ids: ``(l,)`` token ids; context: the window length.
        windows: optional ``(n,)`` indices of the windows to keep, in that order (a random
            subset of the stream, say); all of them by default.

    Returns:
        ``(features (N, d), targets (N,), logits (N, v))`` with ``N = (l − 1) // context ·
        context`` (or ``n · context``): the vector at each position, the token after it, the
        model's logits.
    """
    from sseq.lm import GPT, LSTMLM, eval_windows

    if not isinstance(model, (GPT, LSTMLM)):
        raise TypeError(f"model must be a sseq.lm.GPT or LSTMLM, got {type(model).__name__}")
    x, y = eval_windows(ids, context)                                  # (n, l) each
    if windows is not None:
        windows = torch.as_tensor(windows, dtype=torch.long)
        if windows.dim() != 1 or (len(windows) and not 0 <= int(windows.min()) <= int(
                windows.max()) < len(x)):
            raise ValueError(f"windows must be 1-d indices in [0, {len(x)}), got "
                             f"{windows.tolist() if windows.numel() < 10 else windows.shape}")
        x, y = x[windows], y[windows]
    model.eval()
    feats = []
    for chunk in x.split(batch_size):
        if isinstance(model, GPT):
            h = model._embed(chunk, 0)
            for block in model.blocks:
                h, _ = block(h)
            feats.append(model.ln_f(h))                                 # (b, l, d)
        else:
            feats.append(model.lstm(model.embedding(chunk))[0])
    features = torch.cat(feats).flatten(0, 1)                          # (N, d)
    return features, y.flatten(), model.head(features)


def nearest(queries: torch.Tensor, keys: torch.Tensor, k: int, chunk: int = 65536):
    """The ``k`` keys nearest each query in squared Euclidean distance (exact search).

    Args:
        queries: ``(q, d)``; keys: ``(N, d)``; k: neighbours K ≤ N.

    Returns:
        ``(distances (q, K), indices (q, K))``, nearest first.
    """
    (distances, indices), = nearest_by_size(queries, keys, k, sizes=(len(keys),), chunk=chunk)
    return distances, indices


def nearest_by_size(queries: torch.Tensor, keys: torch.Tensor, k: int, sizes, chunk=65536):
    """The ``k`` nearest among the first ``N`` keys, for each ``N`` in ``sizes``, in one pass.

    The keys are read in order in chunks, keeping a running top-k; its value when the
    first ``N`` keys have been read is the answer for a datastore of size ``N``.

    Returns:
        A list, one ``(distances (q, K), indices (q, K))`` per size.
    """
    _check("queries", queries, (None, None), "(q, d)")
    _check("keys", keys, (None, queries.shape[1]), "(N, d)")
    _positive_int("k", k)
    _positive_int("chunk", chunk)
    sizes = sorted(sizes)
    if not sizes or sizes[0] < k or sizes[-1] > len(keys):
        raise ValueError(f"sizes must lie in [k, N] = [{k}, {len(keys)}], got {sizes!r}")
    q2 = (queries ** 2).sum(-1, keepdim=True)                            # (q, 1)
    best_d = queries.new_zeros(len(queries), 0)
    best_i = torch.zeros(len(queries), 0, dtype=torch.long)
    out, start = [], 0
    for size in sizes:
        while start < size:
            stop = min(start + chunk, size)
            block = keys[start:stop]                                   # (c, d)
            d2 = (q2 - 2 * queries @ block.T + (block ** 2).sum(-1)).clamp_min(0)  # (q, c)
            d2, i2 = d2.topk(min(k, stop - start), dim=1, largest=False)
            best_d = torch.cat([best_d, d2], dim=1)                    # (q, ≤ 2K)
            best_i = torch.cat([best_i, i2 + start], dim=1)
            best_d, order = best_d.topk(min(k, best_d.shape[1]), dim=1, largest=False)
            best_i = best_i.gather(1, order)
            start = stop
        out.append((best_d, best_i))
    return out


def knn_distribution(distances: torch.Tensor, neighbours: torch.Tensor, vocab_size: int,
                     temperature: float = 1.0) -> torch.Tensor:
    """p_kNN(y) ∝ Σ_i 1[v_i = y] exp(−d_i / T): the neighbours' votes, weighted by distance.

    Args:
        distances: squared distances ``(q, K)``; neighbours: their tokens v_i ``(q, K)``;
        vocab_size: v; temperature: T > 0.

    Returns:
        ``(q, v)`` probabilities.
    """
    _check("distances", distances, (None, None), "(q, K)")
    if neighbours.shape != distances.shape or neighbours.is_floating_point():
        raise ValueError(f"neighbours must be integer tokens of shape {tuple(distances.shape)}, "
                         f"got {neighbours.dtype} {tuple(neighbours.shape)}")
    _positive_int("vocab_size", vocab_size)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    weights = torch.softmax(-distances / temperature, dim=-1)         # (q, K)
    probs = distances.new_zeros(len(distances), vocab_size)
    return probs.scatter_add_(1, neighbours, weights)


def knn_distribution_ref(distances, neighbours, vocab_size, temperature=1.0):
    """:func:`knn_distribution` by a loop over queries and neighbours (float64)."""
    out = torch.zeros(len(distances), vocab_size, dtype=torch.float64)
    for q in range(len(distances)):
        weights = [math.exp(-float(d) / temperature) for d in distances[q]]
        for w, v in zip(weights, neighbours[q].tolist(), strict=True):
            out[q, v] += w / sum(weights)
    return out


def interpolate(lm_logits: torch.Tensor, p_knn: torch.Tensor, lam: float) -> torch.Tensor:
    """log p = log(λ p_kNN + (1 − λ) p_LM), computed stably from the LM's logits.

    Args:
        lm_logits: ``(q, v)``; p_knn: ``(q, v)`` probabilities; lam: λ in [0, 1].

    Returns:
        ``(q, v)`` log-probabilities.
    """
    _check("lm_logits", lm_logits, (None, None), "(q, v)")
    _check("p_knn", p_knn, tuple(lm_logits.shape), "(q, v)")
    if not 0 <= lam <= 1:
        raise ValueError(f"lam must be in [0, 1], got {lam!r}")
    log_lm = torch.log_softmax(lm_logits.to(p_knn.dtype), dim=-1)
    if lam == 0:
        return log_lm
    log_knn = torch.log(p_knn)                                          # −inf where no vote
    if lam == 1:
        return log_knn
    return torch.logaddexp(log_lm + math.log1p(-lam), log_knn + math.log(lam))
