"""Scaled dot-product attention, written from its definition.

For queries Q ``(l_q, d)``, keys K ``(l_k, d)`` and values V ``(l_k, d_v)`` of one head,

    A = softmax(Q Kᵀ · s + mask),    output = A V,    s = 1/√d by default,

where the softmax runs over the keys (each row of A sums to 1) and the mask removes the
(query, key) pairs that may not interact. Every function here takes the ``(b, h, l, d)``
layout of PyTorch's :func:`torch.nn.functional.scaled_dot_product_attention`, and
:func:`scaled_dot_product_attention` returns what PyTorch's returns on the same arguments.
Two deliberate differences in what the arguments may be:

* ``causal=True`` aligns the causal mask at the **bottom right**: the last query sees the
  last key. That is what a KV cache needs, where ``l_q`` new queries follow ``l_k − l_q``
  cached keys. PyTorch's ``is_causal=True`` aligns at the top left; its bottom-right
  variant is ``torch.nn.attention.bias.causal_lower_right`` (the two agree for l_q = l_k).
* K and V may have fewer heads than Q (grouped-query attention): each K/V head serves
  ``h / h_kv`` consecutive query heads, as PyTorch's ``enable_gqa=True`` does.
"""

from __future__ import annotations

import math

import torch

__all__ = ["causal_mask", "repeat_kv", "scaled_dot_product_attention", "softmax_saturation"]


def _check_tensor(name: str, x, rank: int, letters: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape {letters}, got "
                        f"{type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.dim() != rank:
        raise ValueError(f"{name} must have shape {letters} (rank {rank}), got shape "
                         f"{tuple(x.shape)} (rank {x.dim()})")


def check_qkv(q, k, v, *, same_d_v: bool = False) -> None:
    """Validate a (q, k, v) triple in the ``(b, h, l, d)`` layout; raise a clear error.

    Args:
        q: ``(b, h, l_q, d)``; k: ``(b, h_kv, l_k, d)``; v: ``(b, h_kv, l_k, d_v)``,
            with ``h_kv`` dividing ``h``.
        same_d_v: also require ``d_v == d`` (for methods whose state is d × d).
    """
    _check_tensor("q", q, 4, "(b, h, l_q, d)")
    _check_tensor("k", k, 4, "(b, h_kv, l_k, d)")
    _check_tensor("v", v, 4, "(b, h_kv, l_k, d_v)")
    if not q.shape[0] == k.shape[0] == v.shape[0]:
        raise ValueError(f"q, k and v must have the same batch size b, got "
                         f"{q.shape[0]}, {k.shape[0]} and {v.shape[0]}")
    if k.shape[1] != v.shape[1] or k.shape[2] != v.shape[2]:
        raise ValueError(f"k and v must have the same heads and length (h_kv, l_k), got "
                         f"k {tuple(k.shape)} and v {tuple(v.shape)}")
    if k.shape[1] == 0 or q.shape[1] % k.shape[1]:
        raise ValueError(f"the number of K/V heads must divide the query heads: q has "
                         f"h = {q.shape[1]} heads, k and v have h_kv = {k.shape[1]}")
    if q.shape[3] != k.shape[3]:
        raise ValueError(f"q and k must have the same head size d, got q {tuple(q.shape)} "
                         f"and k {tuple(k.shape)}")
    if same_d_v and v.shape[3] != q.shape[3]:
        raise ValueError(f"v must have the head size d = {q.shape[3]} of q and k here, got "
                         f"v {tuple(v.shape)}")
    if not q.device == k.device == v.device:
        raise ValueError(f"q, k and v must be on one device, got {q.device}, {k.device} "
                         f"and {v.device}")


def repeat_kv(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Grouped-query attention: repeat each of the h_kv heads of ``x`` for its query heads.

    Args:
        x: keys or values, ``(b, h_kv, l, d)``.
        n_heads: the number of query heads h, a multiple of h_kv.

    Returns:
        ``(b, h, l, d)``; head j of the result is head ``j // (h / h_kv)`` of ``x``.
    """
    if x.shape[1] == n_heads:
        return x
    return x.repeat_interleave(n_heads // x.shape[1], dim=1)


def causal_mask(l_q: int, l_k: int, *, device=None) -> torch.Tensor:
    """The causal mask, aligned at the bottom right: ``True`` where query i may see key j.

    Query i is token ``l_k − l_q + i`` of the sequence, so it sees keys
    ``j ≤ i + (l_k − l_q)``. With ``l_q = l_k`` this is the lower triangle; with one
    query (generation with a KV cache) it is a row of ``True``.

    Returns:
        A boolean tensor of shape ``(l_q, l_k)``.
    """
    ones = torch.ones(l_q, l_k, dtype=torch.bool, device=device)
    return ones.tril(diagonal=l_k - l_q)


def _check_mask(mask, shape: tuple[int, ...]) -> None:
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask must be a torch.Tensor (bool or float), got "
                        f"{type(mask).__name__}")
    if mask.dtype != torch.bool and not mask.is_floating_point():
        raise TypeError(f"mask must be boolean (True = attend) or floating-point (added to "
                        f"the scores), got dtype {mask.dtype}")
    try:
        torch.broadcast_shapes(mask.shape, shape)
        ok = mask.dim() <= 4 and all(m in (1, s) for m, s in zip(mask.shape[::-1],
                                                                 shape[::-1], strict=False))
    except RuntimeError:
        ok = False
    if not ok:
        raise ValueError(f"mask must broadcast to the scores' shape (b, h, l_q, l_k) = "
                         f"{shape}, got shape {tuple(mask.shape)}")


def scaled_dot_product_attention(q, k, v, *, causal: bool = False, mask=None,
                                 scale: float | None = None) -> torch.Tensor:
    """softmax(Q Kᵀ · scale + mask) V, written from the definition.

    Args:
        q: queries ``(b, h, l_q, d)``.
        k: keys ``(b, h_kv, l_k, d)``; v: values ``(b, h_kv, l_k, d_v)``; ``h_kv`` divides h.
        causal: query i sees only keys ``j ≤ i + (l_k − l_q)`` (bottom-right aligned).
        mask: boolean (``True`` = attend) or float (added to the scores), broadcastable to
            ``(b, h, l_q, l_k)``; combined with ``causal`` when both are given.
        scale: multiplies the scores; ``1/√d`` when None.

    Returns:
        ``(b, h, l_q, d_v)``. A query that may see no key at all gets zeros, as in PyTorch.
    """
    check_qkv(q, k, v)
    b, h, l_q, d = q.shape
    l_k = k.shape[2]
    if mask is not None:
        _check_mask(mask, (b, h, l_q, l_k))
    scale = 1 / math.sqrt(d) if scale is None else scale
    k, v = repeat_kv(k, h), repeat_kv(v, h)                    # (b, h, l_k, d), (b, h, l_k, d_v)
    scores = (q @ k.transpose(-2, -1)) * scale                 # (b, h, l_q, l_k)
    allowed = causal_mask(l_q, l_k, device=q.device) if causal else None
    if mask is not None and mask.dtype == torch.bool:
        allowed = mask if allowed is None else allowed & mask
    elif mask is not None:
        scores = scores + mask
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    # A row with no key left would be softmax(-inf, ..., -inf) = NaN: give it zeros instead.
    empty = torch.isneginf(scores).all(dim=-1, keepdim=True)   # (b, h, l_q, 1)
    weights = torch.softmax(scores.masked_fill(empty, 0.0), dim=-1).masked_fill(empty, 0.0)
    return weights @ v                                         # (b, h, l_q, d_v)


def softmax_saturation(ds, *, n_keys: int = 64, n_queries: int = 256, scaled: bool = True,
                       seed: int = 0) -> dict:
    """What the 1/√d scale prevents: measure the softmax of random scores against d.

    Queries and keys have independent unit-variance entries, so ``q · k`` has variance d.
    Without the scale the scores spread like √d and the softmax saturates: one key takes
    all the weight, and the gradient through the softmax vanishes.

    Args:
        ds: head sizes to measure.
        n_keys, n_queries: keys per query, and queries averaged over.
        scaled: divide the scores by √d (the transformer's choice) or not.
        seed: seeds the random queries and keys.

    Returns:
        ``{"d": [...], "max_weight": [...], "entropy": [...], "grad_norm": [...]}``: the mean
        largest attention weight (1/n_keys when uniform, 1 when saturated), the mean entropy
        of the weights in nats (log n_keys when uniform), and the mean norm of the gradient
        of the output with respect to the scores, for a random direction of the output.
    """
    g = torch.Generator().manual_seed(seed)
    out = {"d": [], "max_weight": [], "entropy": [], "grad_norm": []}
    for d in ds:
        q = torch.randn(n_queries, d, generator=g, dtype=torch.float64)
        k = torch.randn(n_keys, d, generator=g, dtype=torch.float64)
        v = torch.randn(n_keys, 1, generator=g, dtype=torch.float64)
        scores = (q @ k.T / (math.sqrt(d) if scaled else 1.0)).requires_grad_()
        weights = torch.softmax(scores, dim=-1)                   # (n_queries, n_keys)
        (weights @ v).sum().backward()
        entropy = -(weights * weights.clamp_min(1e-300).log()).sum(-1)
        out["d"].append(int(d))
        out["max_weight"].append(weights.max(-1).values.mean().item())
        out["entropy"].append(entropy.mean().item())
        out["grad_norm"].append(scores.grad.norm(dim=-1).mean().item())
    return out
