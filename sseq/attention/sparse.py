"""Sparse attention: each query sees a few keys, chosen by a fixed pattern.

* **Sliding window** (Longformer; Beltagy et al., 2020; and Mistral's causal window): query i
  sees the keys within ``window`` positions of it. Cost O(l · window).
* **BigBird** (Zaheer et al., 2020) works on blocks of tokens: each query block sees its
  neighbouring blocks (a window), ``n_random`` random blocks, and the ``n_global`` global
  blocks — which in turn see, and are seen by, everything.

A mask says which (query, key) pairs interact, but applying an ``(l, l)`` mask to the dense
scores still costs O(l²). :func:`block_sparse_attention` computes only the blocks the pattern
needs: for each query block it gathers its key blocks and attends over those alone.
"""

from __future__ import annotations

import math

import torch

from sseq.attention.sdpa import check_qkv, repeat_kv, scaled_dot_product_attention

__all__ = ["bigbird_layout", "bigbird_mask", "block_sparse_attention", "expand_layout",
           "sliding_window_mask", "window_layout"]


def _positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def sliding_window_mask(l: int, window: int, *, causal: bool = True) -> torch.Tensor:
    """``True`` where query i may see key j: ``|i − j| < window`` (and ``j ≤ i`` if causal).

    A causal query sees itself and the ``window − 1`` tokens before it, ``window`` keys in
    all, like Mistral's window W; a two-sided one (Longformer's encoder) ``2·window − 1``.

    Returns:
        ``(l, l)`` bool.
    """
    _positive_int("l", l)
    _positive_int("window", window)
    gap = torch.arange(l)[:, None] - torch.arange(l)[None, :]  # i − j
    allowed = gap.abs() < window
    return allowed & (gap >= 0) if causal else allowed


def bigbird_layout(n_blocks: int, n_global: int, n_random: int, seed: int, *,
                   n_window: int = 3) -> torch.Tensor:
    """BigBird's pattern on blocks: ``True`` where query block I sees key block J.

    Args:
        n_blocks: blocks in the sequence.
        n_global: the first ``n_global`` blocks are global: they see every block and every
            block sees them.
        n_random: key blocks drawn at random for each other query block, among those it does
            not see already (fewer when not enough are left).
        seed: seeds the random blocks.
        n_window: the window, in blocks, centred on the query block (odd; 3 in BigBird).

    Returns:
        ``(n_blocks, n_blocks)`` bool.
    """
    _positive_int("n_blocks", n_blocks)
    _positive_int("n_global", n_global, 0)
    _positive_int("n_random", n_random, 0)
    _positive_int("n_window", n_window)
    idx = torch.arange(n_blocks)
    layout = (idx[:, None] - idx[None, :]).abs() <= n_window // 2
    layout[:n_global, :] = True
    layout[:, :n_global] = True
    g = torch.Generator().manual_seed(seed)
    for row in range(n_global, n_blocks):
        free = (~layout[row]).nonzero().flatten()
        pick = free[torch.randperm(len(free), generator=g)[:n_random]]
        layout[row, pick] = True
    return layout


def expand_layout(layout: torch.Tensor, block_size: int) -> torch.Tensor:
    """A block layout ``(nb_q, nb_k)`` as a token mask ``(nb_q · block, nb_k · block)``."""
    return layout.repeat_interleave(block_size, 0).repeat_interleave(block_size, 1)


def bigbird_mask(l: int, block: int, n_global: int, n_random: int, seed: int, *,
                 n_window: int = 3) -> torch.Tensor:
    """BigBird's pattern as a token mask ``(l, l)``; ``l`` must be a multiple of ``block``.

    See :func:`bigbird_layout` for the arguments.
    """
    _positive_int("block", block)
    if _positive_int("l", l) % block:
        raise ValueError(f"l must be a multiple of block: l = {l}, block = {block}")
    layout = bigbird_layout(l // block, n_global, n_random, seed, n_window=n_window)
    return expand_layout(layout, block)


def window_layout(n_blocks: int, window: int, block_size: int, *,
                  causal: bool = True) -> torch.Tensor:
    """The blocks that :func:`sliding_window_mask` touches: ``(n_blocks, n_blocks)`` bool.

    Blocks I and J hold token pairs (i, j) with i − j between (I − J)·B − (B − 1) and
    (I − J)·B + (B − 1); the pair of blocks is needed if one of them is inside the window.
    """
    for name, value in (("n_blocks", n_blocks), ("window", window), ("block_size", block_size)):
        _positive_int(name, value)
    shift = torch.arange(n_blocks)[:, None] - torch.arange(n_blocks)[None, :]  # I − J
    closest = (shift.abs() * block_size - (block_size - 1)).clamp_min(0)      # min |i − j|
    needed = closest < window
    return needed & (shift >= 0) if causal else needed


def block_sparse_attention(q, k, v, layout, block_size: int, *, causal: bool = False,
                           window: int | None = None, scale: float | None = None):
    """Attention restricted to the blocks of ``layout``, computing those blocks only.

    Equal to :func:`~sseq.attention.scaled_dot_product_attention` with the token mask
    ``expand_layout(layout, block_size)`` (and ``& sliding_window_mask(l, window, causal)``
    when ``window`` is given, ``& causal_mask`` when ``causal``). Each query block gathers
    its key blocks, at most m of them: memory and work O(l · m · block · d), linear in l.
    Query blocks that see more than half of all blocks (BigBird's global ones) attend
    densely, over whole rows: a few rows of length l, still linear in l.

    Args:
        q: ``(b, h, l, d)``; k: ``(b, h_kv, l, d)``; v: ``(b, h_kv, l, d_v)``, with l a
            multiple of ``block_size``.
        layout: ``(l / block_size, l / block_size)`` bool, True where a block is computed.
        block_size: tokens per block.
        causal, window: token-level limits inside the computed blocks.
        scale: multiplies the scores; ``1/√d`` when None.

    Returns:
        ``(b, h, l, d_v)``.
    """
    check_qkv(q, k, v)
    b, h, l, d = q.shape
    _positive_int("block_size", block_size)
    if k.shape[2] != l or l % block_size:
        raise ValueError(f"q and k must have one length l, a multiple of block_size = "
                         f"{block_size}; got l_q = {l}, l_k = {k.shape[2]}")
    nb = l // block_size
    if not isinstance(layout, torch.Tensor) or layout.dtype != torch.bool or \
            tuple(layout.shape) != (nb, nb):
        raise ValueError(f"layout must be a bool tensor of shape (l / block_size,) * 2 = "
                         f"{(nb, nb)}, got {getattr(layout, 'dtype', type(layout).__name__)} "
                         f"{tuple(getattr(layout, 'shape', ()))}")
    if window is not None:
        _positive_int("window", window)
    k, v = repeat_kv(k, h), repeat_kv(v, h)
    scale = 1 / math.sqrt(d) if scale is None else scale
    layout = layout.to(q.device)
    wide = layout.sum(dim=1) * 2 > nb                        # query blocks to attend densely
    limits = dict(causal=causal, window=window, scale=scale)
    out = q.new_zeros(b, h, nb, block_size, v.shape[-1])
    for rows, attend in ((~wide, _gathered_blocks), (wide, _dense_blocks)):
        rows = rows.nonzero().flatten()
        if len(rows):
            out[:, :, rows] = attend(q, k, v, layout, rows, block_size, **limits)
    return out.flatten(2, 3)                                 # (b, h, l, d_v)


def _token_limits(pos_q, pos_k, allowed, causal: bool, window: int | None):
    """``allowed`` & the causal and window limits, from the tokens' positions."""
    if causal:
        allowed = allowed & (pos_k <= pos_q)
    if window is not None:
        allowed = allowed & ((pos_q - pos_k).abs() < window)
    return allowed


def _gathered_blocks(q, k, v, layout, rows, block_size, *, causal, window, scale):
    """Query blocks ``rows``, each over its own key blocks gathered: ``(b, h, r, B, d_v)``."""
    b, h, _, d = q.shape
    nb, B = layout.shape[0], block_size
    counts = layout[rows].sum(dim=1)                               # key blocks per query block
    m = max(int(counts.max()), 1)
    order = layout[rows].to(torch.int8).argsort(dim=1, descending=True, stable=True)
    idx = order[:, :m]                                             # (r, m): its blocks first
    present = torch.arange(m, device=q.device) < counts[:, None]   # (r, m): padding is False
    K_g = k.reshape(b, h, nb, B, d)[:, :, idx].flatten(3, 4)         # (b, h, r, m·B, d)
    V_g = v.reshape(b, h, nb, B, -1)[:, :, idx].flatten(3, 4)        # (b, h, r, m·B, d_v)
    Q_b = q.reshape(b, h, nb, B, d)[:, :, rows]                      # (b, h, r, B, d)
    pos_q = (rows[:, None] * B + torch.arange(B, device=q.device))[:, :, None]   # (r, B, 1)
    pos_k = (idx[:, :, None] * B + torch.arange(B, device=q.device)).flatten(1)[:, None, :]
    allowed = present.repeat_interleave(B, dim=1)[:, None, :]      # (r, 1, m·B)
    allowed = _token_limits(pos_q, pos_k, allowed, causal, window)
    s = (Q_b @ K_g.transpose(-2, -1)) * scale                      # (b, h, r, B, m·B)
    s = s.masked_fill(~allowed, float("-inf"))
    empty = torch.isneginf(s).all(dim=-1, keepdim=True)
    weights = torch.softmax(s.masked_fill(empty, 0.0), dim=-1).masked_fill(empty, 0.0)
    return weights @ V_g                                           # (b, h, r, B, d_v)


def _dense_blocks(q, k, v, layout, rows, block_size, *, causal, window, scale):
    """Query blocks ``rows`` over every key, masked: ``(b, h, r, B, d_v)``."""
    b, h, l, d = q.shape
    B = block_size
    Q_r = q.reshape(b, h, -1, B, d)[:, :, rows].flatten(2, 3)     # (b, h, r·B, d)
    pos_q = (rows[:, None] * B + torch.arange(B, device=q.device)).flatten()[:, None]
    pos_k = torch.arange(l, device=q.device)[None, :]
    allowed = layout[rows].repeat_interleave(B, 0).repeat_interleave(B, 1)  # (r·B, l)
    allowed = _token_limits(pos_q, pos_k, allowed, causal, window)
    y = scaled_dot_product_attention(Q_r, k, v, mask=allowed, scale=scale)
    return y.unflatten(2, (len(rows), B))                          # (b, h, r, B, d_v)
