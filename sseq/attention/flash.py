"""Exact attention without the n × n matrix: the online softmax, tiled (FlashAttention).

The direct form materializes the scores S = Q Kᵀ, ``(l_q, l_k)`` per head, then the weights
softmax(S). Both are quadratic in the length. But the output of query i,

    o_i = Σ_j e^{s_ij} v_j / Σ_j e^{s_ij},

is a ratio of two sums over the keys, and sums can be accumulated a block of keys at a time.
The only obstacle is the max that a stable softmax subtracts, which is not known until all
keys are seen. The **online softmax** (Milakov & Gimelshein, 2018) keeps a running max m and
rescales what was summed so far whenever m grows:

    m' = max(m, max_j s_ij),   ℓ' = ℓ e^{m − m'} + Σ_j e^{s_ij − m'},
    acc' = acc e^{m − m'} + Σ_j e^{s_ij − m'} v_j,        and at the end  o_i = acc / ℓ.

Tiling queries and keys into blocks (Dao et al., 2022) keeps only ``(block, block)`` scores
alive at a time: memory O(l · d + block²) instead of O(l²). On a GPU the blocks live in fast
on-chip memory and the whole loop is one fused kernel; here it is written in PyTorch, so the
loop runs in Python, to be read — the same "don't materialize" idea as Chapter 5's scan kernel.
"""

from __future__ import annotations

import math

import torch

from sseq.attention.sdpa import check_qkv, repeat_kv

__all__ = ["flash_attention"]


def flash_attention(q, k, v, causal: bool = False, block_size: int = 128, *,
                    scale: float | None = None) -> torch.Tensor:
    """Attention by tiles with the online softmax: equal to the direct form, O(l) memory.

    Same semantics as :func:`sseq.attention.scaled_dot_product_attention` (causal mask aligned
    at the bottom right, grouped-query heads), without a mask argument.

    Args:
        q: ``(b, h, l_q, d)``; k: ``(b, h_kv, l_k, d)``; v: ``(b, h_kv, l_k, d_v)``.
        causal: query i sees keys ``j ≤ i + (l_k − l_q)`` only; key blocks entirely in the
            future are skipped, which halves the work.
        block_size: queries and keys per tile.
        scale: multiplies the scores; ``1/√d`` when None.

    Returns:
        ``(b, h, l_q, d_v)``.
    """
    check_qkv(q, k, v)
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size must be a positive int, got {block_size!r}")
    h, l_q, d = q.shape[1:]
    l_k, offset = k.shape[2], k.shape[2] - q.shape[2]
    k, v = repeat_kv(k, h), repeat_kv(v, h)
    scale = 1 / math.sqrt(d) if scale is None else scale
    blocks = []
    for i0 in range(0, l_q, block_size):
        q_i = q[:, :, i0:i0 + block_size] * scale                # (b, h, B_q, d)
        last = min(l_k, i0 + q_i.shape[2] + offset) if causal else l_k  # keys seen, at most
        blocks.append(_one_query_block(q_i, k, v, i0 + offset, last, causal, block_size))
    return torch.cat(blocks, dim=2)                              # (b, h, l_q, d_v)


def _one_query_block(q_i, k, v, first_row: int, n_keys: int, causal: bool, block_size: int):
    """Stream the first ``n_keys`` keys past one block of queries; row r is token first_row+r."""
    b, h, n_rows, _ = q_i.shape
    m = q_i.new_full((b, h, n_rows, 1), float("-inf"))          # running max of the scores
    denominator = q_i.new_zeros(b, h, n_rows, 1)                # running Σ_j e^{s_ij − m}
    acc = q_i.new_zeros(b, h, n_rows, v.shape[-1])              # running Σ_j e^{s_ij − m} v_j
    rows = torch.arange(first_row, first_row + n_rows, device=q_i.device)[:, None]
    for j0 in range(0, n_keys, block_size):
        k_j, v_j = k[:, :, j0:min(j0 + block_size, n_keys)], v[:, :, j0:min(j0 + block_size,
                                                                           n_keys)]
        s = q_i @ k_j.transpose(-2, -1)                         # (b, h, B_q, B_k)
        if causal and j0 + k_j.shape[2] - 1 > first_row:       # this tile crosses the diagonal
            cols = torch.arange(j0, j0 + k_j.shape[2], device=q_i.device)[None, :]
            s = s.masked_fill(cols > rows, float("-inf"))
        m_new = torch.maximum(m, s.amax(dim=-1, keepdim=True))
        m_safe = m_new.masked_fill(torch.isneginf(m_new), 0.0)  # rows with no key seen yet
        p = torch.exp(s - m_safe)                               # (b, h, B_q, B_k)
        rescale = torch.exp(m - m_safe)                         # e^{m − m'}: shrink the old sums
        denominator = denominator * rescale + p.sum(dim=-1, keepdim=True)
        acc = acc * rescale + p @ v_j
        m = m_new
    # a query with no key to see (causal, l_q > l_k) returns zeros, as the direct form does
    return acc / denominator.masked_fill(denominator == 0, 1.0)
