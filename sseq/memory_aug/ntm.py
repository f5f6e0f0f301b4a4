"""The Neural Turing Machine's memory: addressing by content and by location, reading, writing.

A Neural Turing Machine (Graves et al., 2014) keeps the past in an external matrix
``M`` of ``n`` slots (rows) of ``m`` numbers each, and touches it only through *weightings*:
a distribution ``w`` over the slots, emitted anew by every head at every step. Everything is
differentiable, so a controller network learns where to write and where to read by gradient
descent. One head's weighting is made in four steps (§3.3 of the paper):

    w^c(i) = softmax_i( β · cos(k, M(i)) )              content: find the slot that looks like k
    w^g    = g · w^c + (1 − g) · w_prev                   gate: content, or stay where it was
    w̃(i)   = Σ_j w^g(j) · s((i − j) mod n)                 shift: move the focus by −1, 0 or +1
    w(i)   = w̃(i)^γ / Σ_j w̃(j)^γ                           sharpen: undo the shift's blur

then a read returns ``r = Σ_i w(i) M(i)`` and a write first erases, then adds (§3.1–3.2):

    M(i) ← M(i) ⊙ (1 − w(i) e) + w(i) a                   e ∈ [0, 1]^m erase, a ∈ ℝ^m add

Shapes: ``b`` batch, ``n`` memory slots (Graves's N), ``m`` slot width (Graves's M).
"""

from __future__ import annotations

import torch

__all__ = ["SHIFTS", "address", "circular_shift", "content_addressing", "gated_interpolation",
           "read", "sharpen", "write"]

SHIFTS = (-1, 0, 1)  # the allowed moves of the focus, in the order of s's entries
EPS = 1e-8  # keeps the cosine finite for an all-zero slot or key


def _check(name: str, x, shape: tuple, letters: str) -> None:
    """x is a floating tensor of the given shape (None matches any size)."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor {letters}, got "
                        f"{type(x).__name__} {getattr(x, 'dtype', '')}")
    if x.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, x.shape,
                                                                                strict=True)):
        want = "(" + ", ".join("?" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name} must have shape {letters} = {want}, got {tuple(x.shape)}")


def content_addressing(memory: torch.Tensor, key: torch.Tensor,
                       beta: torch.Tensor) -> torch.Tensor:
    """w^c(i) = softmax_i(β · cos(k, M(i))): a weighting that peaks at the slots like the key.

    Args:
        memory: ``(b, n, m)``; key: ``(b, m)``; beta: the key strength β ≥ 0, ``(b,)``.

    Returns:
        ``(b, n)``, each row a distribution over the slots (β = 0: uniform).
    """
    _check("memory", memory, (None, None, None), "(b, n, m)")
    b, n, m = memory.shape
    _check("key", key, (b, m), "(b, m)")
    _check("beta", beta, (b,), "(b,)")
    dot = (memory @ key[:, :, None]).squeeze(-1)                        # (b, n)
    norms = memory.norm(dim=-1) * key.norm(dim=-1, keepdim=True)        # (b, n)
    return torch.softmax(beta[:, None] * dot / (norms + EPS), dim=-1)


def gated_interpolation(w_content: torch.Tensor, w_prev: torch.Tensor,
                        g: torch.Tensor) -> torch.Tensor:
    """w^g = g · w^c + (1 − g) · w_prev: g = 1 looks up by content, g = 0 keeps the old focus.

    Args:
        w_content, w_prev: ``(b, n)``; g: the gate in [0, 1], ``(b,)``.
    """
    _check("w_content", w_content, (None, None), "(b, n)")
    _check("w_prev", w_prev, tuple(w_content.shape), "(b, n)")
    _check("g", g, (w_content.shape[0],), "(b,)")
    return g[:, None] * w_content + (1 - g[:, None]) * w_prev


def circular_shift(w: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """w̃(i) = Σ_j w(j) s((i − j) mod n): a circular convolution with the shift distribution.

    Args:
        w: ``(b, n)``; s: ``(b, 3)``, the probabilities of moving by −1, 0, +1 (:data:`SHIFTS`).

    Returns:
        ``(b, n)``: with s one-hot on +1, the weighting moved one slot forward.
    """
    _check("w", w, (None, None), "(b, n)")
    _check("s", s, (w.shape[0], len(SHIFTS)), "(b, 3)")
    moved = torch.stack([torch.roll(w, k, dims=-1) for k in SHIFTS], dim=-1)  # (b, n, 3)
    return (moved * s[:, None, :]).sum(-1)


def sharpen(w: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """w(i) = w̃(i)^γ / Σ_j w̃(j)^γ, with γ ≥ 1.

    Args:
        w: ``(b, n)``, non-negative; gamma: ``(b,)``.
    """
    _check("w", w, (None, None), "(b, n)")
    _check("gamma", gamma, (w.shape[0],), "(b,)")
    powered = (w + EPS) ** gamma[:, None]  # EPS: 0^γ has no gradient with respect to γ
    return powered / powered.sum(-1, keepdim=True)


def address(memory, w_prev, key, beta, g, s, gamma) -> torch.Tensor:
    """One head's weighting: content, gate, shift, sharpen (the four equations above).

    Args:
        memory: ``(b, n, m)``; w_prev: the head's last weighting ``(b, n)``; key ``(b, m)``;
        beta, g, gamma: ``(b,)``; s: ``(b, 3)``.

    Returns:
        ``(b, n)``.
    """
    w = content_addressing(memory, key, beta)
    w = gated_interpolation(w, w_prev, g)
    return sharpen(circular_shift(w, s), gamma)


def read(memory: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """r = Σ_i w(i) M(i): ``(b, n, m)`` and ``(b, n)`` → ``(b, m)``."""
    _check("memory", memory, (None, None, None), "(b, n, m)")
    _check("w", w, tuple(memory.shape[:2]), "(b, n)")
    return (w[:, None, :] @ memory).squeeze(1)


def write(memory: torch.Tensor, w: torch.Tensor, erase: torch.Tensor,
          add: torch.Tensor) -> torch.Tensor:
    """M(i) ← M(i) ⊙ (1 − w(i) e) + w(i) a, for every slot i at once.

    Args:
        memory: ``(b, n, m)``; w: ``(b, n)``; erase: e in [0, 1], ``(b, m)``; add: a, ``(b, m)``.

    Returns:
        The new memory ``(b, n, m)`` (the old one is left as it was).
    """
    _check("memory", memory, (None, None, None), "(b, n, m)")
    b, n, m = memory.shape
    _check("w", w, (b, n), "(b, n)")
    _check("erase", erase, (b, m), "(b, m)")
    _check("add", add, (b, m), "(b, m)")
    w = w[:, :, None]                                                   # (b, n, 1)
    return memory * (1 - w * erase[:, None, :]) + w * add[:, None, :]
