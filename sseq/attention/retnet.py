"""Retention: linear attention with a decay, in three forms that give the same numbers.

Give causal linear attention (identity features, no normalizer) a forgetting factor γ per
step, and its matrix state becomes that of a linear state space model (RetNet; Sun et al.,
2023):

    S_t = γ_t S_{t−1} + k_t v_tᵀ,          y_t = q_tᵀ S_t           (state S_t: d × d_v)

Unrolled, y_t = Σ_{s≤t} (γ_{s+1} ⋯ γ_t) (q_t · k_s) v_s: attention with a decay matrix
D_ts = γ_{s+1} ⋯ γ_t (= γ^{t−s} for a constant γ) in place of the softmax. So it can be run

* **parallel**: Y = (Q Kᵀ ⊙ D) V, all positions at once, O(l²) — for training;
* **recurrent**: the loop above, O(1) per token with a d × d_v state — for generation;
* **chunkwise**: parallel inside chunks of c tokens, recurrent across chunks, O(l · c).

RetNet uses one constant γ per head (and rotates q and k by their positions, like RoPE,
which is folded into q and k here). With γ_t depending on the token, one scalar per head
and step, the same map is the state space duality (SSD) layer of Mamba-2 (Dao & Gu, 2024):
:func:`retention_as_selective_scan` computes it with Mamba's selective scan.
"""

from __future__ import annotations

import torch

from sseq.attention.sdpa import check_qkv

__all__ = ["FORMS", "retention", "retention_as_selective_scan", "state_sizes"]

FORMS = ("parallel", "recurrent", "chunkwise")


def _log_decay(gamma, q: torch.Tensor) -> torch.Tensor:
    """log γ_t as a ``(b, h, l)`` tensor from a float, a ``(h,)`` or a ``(b, h, l)`` tensor."""
    b, h, l, _ = q.shape
    gamma = torch.as_tensor(gamma, dtype=q.dtype, device=q.device)
    if gamma.dim() == 1 and gamma.shape[0] == h:
        gamma = gamma[None, :, None]
    elif gamma.dim() not in (0, 3) or (gamma.dim() == 3 and tuple(gamma.shape) != (b, h, l)):
        raise ValueError(f"gamma must be a float, a (h,) = ({h},) tensor (one decay per head) "
                         f"or a (b, h, l) = {(b, h, l)} tensor (one per head and step), got "
                         f"shape {tuple(gamma.shape)}")
    if not bool(((gamma > 0) & (gamma <= 1)).all()):
        raise ValueError(f"gamma must be in (0, 1], got values from {gamma.min().item():.3g} "
                         f"to {gamma.max().item():.3g}")
    return gamma.log().expand(b, h, l)


def _decay_matrix(log_g: torch.Tensor) -> torch.Tensor:
    """D_ts = exp(Σ_{r=s+1..t} log γ_r) for s ≤ t, else 0: ``(b, h, l)`` → ``(b, h, l, l)``."""
    cum = log_g.cumsum(dim=-1)                                      # (b, h, l)
    gap = cum[..., :, None] - cum[..., None, :]                     # (b, h, t, s)
    future = torch.ones(gap.shape[-2:], dtype=torch.bool, device=gap.device).triu(1)
    return torch.exp(gap.masked_fill(future, float("-inf")))


def _parallel(q, k, v, log_g):
    return ((q @ k.transpose(-2, -1)) * _decay_matrix(log_g)) @ v  # (b, h, l, d_v)


def _recurrent(q, k, v, log_g):
    S = q.new_zeros(q.shape[0], q.shape[1], q.shape[-1], v.shape[-1])  # (b, h, d, d_v)
    ys = []
    for t in range(q.shape[2]):
        S = log_g[:, :, t, None, None].exp() * S + k[:, :, t, :, None] * v[:, :, t, None, :]
        ys.append((q[:, :, t, None, :] @ S).squeeze(-2))            # q_t S_t  (b, h, d_v)
    return torch.stack(ys, dim=2)


def _chunkwise(q, k, v, log_g, chunk_size: int):
    S = q.new_zeros(q.shape[0], q.shape[1], q.shape[-1], v.shape[-1])  # (b, h, d, d_v)
    ys = []
    for c0 in range(0, q.shape[2], chunk_size):
        part = slice(c0, c0 + chunk_size)
        q_c, k_c, v_c, g_c = q[:, :, part], k[:, :, part], v[:, :, part], log_g[:, :, part]
        cum = g_c.cumsum(dim=-1)                                    # (b, h, c): log γ_{c0..t}
        inner = _parallel(q_c, k_c, v_c, g_c)                       # the chunk's own tokens
        cross = (q_c * cum.exp()[..., None]) @ S                    # the state, decayed to t
        ys.append(inner + cross)
        to_end = (cum[..., -1:] - cum).exp()[..., None]             # decay from s to the end
        S = cum[..., -1, None, None].exp() * S + (k_c * to_end).transpose(-2, -1) @ v_c
    return torch.cat(ys, dim=2)


def retention(q, k, v, gamma, form: str = "parallel", chunk_size: int = 64) -> torch.Tensor:
    """y_t = Σ_{s≤t} (γ_{s+1} ⋯ γ_t) (q_t · k_s) v_s, in the parallel, recurrent or chunkwise form.

    Args:
        q, k: ``(b, h, l, d)``; v: ``(b, h, l, d_v)``.
        gamma: the decay in (0, 1]: a float, one per head ``(h,)``, or one per head and step
            ``(b, h, l)`` (γ_t multiplies the state when token t arrives). γ = 1 is causal
            linear attention without feature map or normalizer.
        form: ``"parallel"``, ``"recurrent"`` or ``"chunkwise"`` (see the module docstring).
        chunk_size: tokens per chunk of the chunkwise form.

    Returns:
        ``(b, h, l, d_v)``, the same for every form up to rounding.
    """
    check_qkv(q, k, v)
    if k.shape[1] != q.shape[1] or k.shape[2] != q.shape[2]:
        raise ValueError(f"q, k and v must have the same heads and length (h, l), got "
                         f"q {tuple(q.shape)}, k {tuple(k.shape)}")
    log_g = _log_decay(gamma, q)                                    # (b, h, l)
    if form == "parallel":
        return _parallel(q, k, v, log_g)
    if form == "recurrent":
        return _recurrent(q, k, v, log_g)
    if form == "chunkwise":
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
        return _chunkwise(q, k, v, log_g, chunk_size)
    raise ValueError(f"form must be one of {FORMS}, got {form!r}")


def retention_as_selective_scan(q, k, v, gamma) -> torch.Tensor:
    """Retention computed by Mamba's selective scan (:func:`sseq.scan.selective_scan_ref`).

    For each head, each value channel j runs h_t = exp(Δ_t A) h_{t−1} + Δ_t B_t u_t,
    y_t = ⟨C_t, h_t⟩ with state n = d, and we choose

        u = v[..., j],  C_t = q_t,  A = −1 (a scalar for every channel and state),
        Δ_t = −log γ_t  (so exp(Δ_t A) = γ_t),  B_t = k_t / Δ_t  (Mamba's Euler B: Δ_t B_t = k_t).

    So retention is a selective SSM whose A is a scalar multiple of the identity — Mamba-2's
    restriction — and whose state, n × d_v per head, is the matrix S_t. Needs γ < 1.

    Args and Returns: as :func:`retention`.
    """
    from sseq.scan import selective_scan_ref

    check_qkv(q, k, v)
    b, h, l, d = q.shape
    log_g = _log_decay(gamma, q)
    if bool((log_g == 0).any()):
        raise ValueError("gamma must be < 1 here: γ = 1 would need the step Δ = −log γ = 0")
    dt = -log_g.reshape(b * h, l)                                   # (b·h, l)
    u = v.reshape(b * h, l, v.shape[-1])                            # (b·h, l, d_v): channels
    delta = dt[..., None].expand_as(u)                              # one Δ for every channel
    A = -torch.ones(u.shape[-1], d, dtype=q.dtype, device=q.device)               # (d_v, n = d)
    B = k.reshape(b * h, l, d) / dt[..., None]                      # (b·h, l, n)
    C = q.reshape(b * h, l, d)
    return selective_scan_ref(u, delta, A, B, C).reshape(b, h, l, -1)


def state_sizes(length: int, d_model: int, n_heads: int, d_state: int = 16,
                expand: int = 2) -> dict[str, int]:
    """Numbers one layer keeps about the past after ``length`` tokens, by family.

    * attention's KV cache: a key and a value per token, 2 · l · d_model;
    * linear attention / retention: a d_head × d_head matrix per head, d_model² / n_heads;
    * a Mamba layer: N numbers per channel of its expanded width, expand · d_model · N.
    """
    d_head = d_model // n_heads
    return {"attention (KV cache)": 2 * length * d_model,
            "linear attention / retention": n_heads * d_head * d_head,
            "Mamba (selective SSM)": expand * d_model * d_state}
