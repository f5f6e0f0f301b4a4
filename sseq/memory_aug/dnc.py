"""The Differentiable Neural Computer's temporal links: remembering the order of writes.

An NTM can move its focus one slot at a time, so it recalls a sequence in order only if it
wrote it to consecutive slots. The DNC (Graves et al., 2016, Methods) records instead *which
slot was written after which*, whatever the slots, in an ``n × n`` link matrix ``L``:

    p_t       = (1 − Σ_i w_t(i)) · p_{t−1} + w_t                   precedence, p_0 = 0
    L_t[i, j] = (1 − w_t(i) − w_t(j)) · L_{t−1}[i, j] + w_t(i) · p_{t−1}(j),   L_t[i, i] = 0
    f_t       = L_t  w^r_{t−1}                                     forward: what came next
    b_t       = L_tᵀ w^r_{t−1}                                     backward: what came before

``p_t(j)`` is how much slot j was "the last one written"; ``L[i, j]`` is how much slot i was
written right after slot j. A read head that follows ``f`` replays the writes in order.

Shapes: ``b`` batch, ``l`` steps, ``n`` memory slots.
"""

from __future__ import annotations

import torch

from sseq.memory_aug.ntm import _check

__all__ = ["backward_weighting", "forward_weighting", "link_update", "link_update_ref",
           "precedence_update", "temporal_links"]


def precedence_update(p: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """p_t = (1 − Σ_i w_t(i)) p_{t−1} + w_t.

    Args:
        p: the last precedence ``(b, n)``; w: this step's write weighting ``(b, n)``.
    """
    _check("p", p, (None, None), "(b, n)")
    _check("w", w, tuple(p.shape), "(b, n)")
    return (1 - w.sum(-1, keepdim=True)) * p + w


def link_update(L: torch.Tensor, p_prev: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """L_t = (1 − w_i − w_j) ⊙ L_{t−1} + w_i p_{t−1}(j), with a zero diagonal.

    Args:
        L: ``(b, n, n)``; p_prev: the precedence before this write ``(b, n)``;
        w: the write weighting ``(b, n)``.

    Returns:
        ``(b, n, n)``.
    """
    _check("L", L, (None, None, None), "(b, n, n)")
    b, n, _ = L.shape
    _check("L", L, (b, n, n), "(b, n, n)")
    _check("p_prev", p_prev, (b, n), "(b, n)")
    _check("w", w, (b, n), "(b, n)")
    keep = 1 - w[:, :, None] - w[:, None, :]                           # (b, n, n)
    new = keep * L + w[:, :, None] * p_prev[:, None, :]
    return new * (1 - torch.eye(n, dtype=L.dtype, device=L.device))


def link_update_ref(L: torch.Tensor, p_prev: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """:func:`link_update` entry by entry: the paper's formula as written (slow)."""
    out = torch.zeros_like(L)
    b, n, _ = L.shape
    for k in range(b):
        for i in range(n):
            for j in range(n):
                if i != j:
                    out[k, i, j] = ((1 - w[k, i] - w[k, j]) * L[k, i, j]
                                    + w[k, i] * p_prev[k, j])
    return out


def temporal_links(write_weights: torch.Tensor):
    """Run the precedence and link updates over a trace of write weightings.

    Args:
        write_weights: ``(b, l, n)``, the write head's weighting at each step.

    Returns:
        ``(L, p)``: the link matrix ``(b, n, n)`` and the precedence ``(b, n)`` after the
        last write.
    """
    _check("write_weights", write_weights, (None, None, None), "(b, l, n)")
    b, _, n = write_weights.shape
    L = write_weights.new_zeros(b, n, n)
    p = write_weights.new_zeros(b, n)
    for w in write_weights.unbind(1):
        L = link_update(L, p, w)                                       # uses p_{t−1}
        p = precedence_update(p, w)
    return L, p


def forward_weighting(L: torch.Tensor, w_read: torch.Tensor) -> torch.Tensor:
    """f = L w^r: ``(b, n, n)``, ``(b, n)`` → ``(b, n)``, the slots written after the read ones."""
    _check("L", L, (None, None, None), "(b, n, n)")
    _check("w_read", w_read, tuple(L.shape[:2]), "(b, n)")
    return (L @ w_read[:, :, None]).squeeze(-1)


def backward_weighting(L: torch.Tensor, w_read: torch.Tensor) -> torch.Tensor:
    """b = Lᵀ w^r: ``(b, n, n)``, ``(b, n)`` → ``(b, n)``, the slots written before."""
    _check("L", L, (None, None, None), "(b, n, n)")
    _check("w_read", w_read, tuple(L.shape[:2]), "(b, n)")
    return (L.transpose(1, 2) @ w_read[:, :, None]).squeeze(-1)
