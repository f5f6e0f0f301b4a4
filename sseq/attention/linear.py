"""Linear attention: replace e^{q·k} by a product of features, and attention becomes an RNN.

Softmax attention weighs key j by sim(q_i, k_j) = exp(q_i · k_j / √d). Any similarity of the
form sim(q, k) = φ(q) · φ(k), with a feature map φ, lets the sums be regrouped
(Katharopoulos et al., 2020):

    y_i = Σ_{j≤i} (φ(q_i)·φ(k_j)) v_j / Σ_{j≤i} φ(q_i)·φ(k_j)
        = φ(q_i)ᵀ S_i / φ(q_i)ᵀ z_i,    S_i = Σ_{j≤i} φ(k_j) v_jᵀ,   z_i = Σ_{j≤i} φ(k_j).

Two ways to compute the same numbers:

* the **parallel form** (:func:`linear_attention`): the masked ``(l, l)`` matrix of
  similarities, as in softmax attention — quadratic, but all positions at once;
* the **recurrent form** (:func:`linear_attention_recurrent`): S_i = S_{i−1} + φ(k_i) v_iᵀ,
  a state of fixed size d × d_v (plus the normalizer z) updated once per token — an RNN
  whose state is a matrix, i.e. a state space model with a matrix-valued state.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from sseq.attention.sdpa import causal_mask, check_qkv, repeat_kv

__all__ = ["FEATURE_MAPS", "linear_attention", "linear_attention_from_features",
           "linear_attention_recurrent"]

FEATURE_MAPS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "elu+1": lambda x: F.elu(x) + 1,  # Katharopoulos et al.: positive, smooth, cheap
    "relu": F.relu,
    "identity": lambda x: x,          # no feature map: retention's choice (unnormalized)
}


def _features(q, k, feature_map):
    if callable(feature_map):
        phi = feature_map
    elif feature_map in FEATURE_MAPS:
        phi = FEATURE_MAPS[feature_map]
    else:
        raise ValueError(f"feature_map must be a function or one of {sorted(FEATURE_MAPS)}, "
                         f"got {feature_map!r}")
    return phi(q), phi(k)


def linear_attention_from_features(phi_q, phi_k, v, *, causal: bool = True,
                                   normalize: bool = True, eps: float = 1e-6):
    """The parallel form from features already computed (used by the Performer too).

    Args:
        phi_q: ``(b, h, l_q, m)``; phi_k: ``(b, h, l_k, m)``; v: ``(b, h, l_k, d_v)``.
        causal: query i sums over keys ``j ≤ i + (l_k − l_q)`` (the causal mask
            of :func:`~sseq.attention.causal_mask`); else over every key.
        normalize: divide by Σ_j φ(q_i)·φ(k_j) (+ eps); else return the plain sum.

    Returns:
        ``(b, h, l_q, d_v)``.
    """
    if causal:  # the quadratic form: a masked similarity matrix
        A = phi_q @ phi_k.transpose(-2, -1)                              # (b, h, l_q, l_k)
        A = A * causal_mask(A.shape[-2], A.shape[-1], device=A.device)
        numerator, denominator = A @ v, A.sum(dim=-1, keepdim=True)
    else:  # no mask: regroup as φ(Q) (φ(K)ᵀ V), linear in the length
        numerator = phi_q @ (phi_k.transpose(-2, -1) @ v)                # (b, h, l_q, d_v)
        denominator = phi_q @ phi_k.sum(dim=-2).unsqueeze(-1)            # (b, h, l_q, 1)
    return numerator / (denominator + eps) if normalize else numerator


def linear_attention(q, k, v, feature_map="elu+1", causal: bool = True, *,
                     normalize: bool = True, eps: float = 1e-6) -> torch.Tensor:
    """Linear attention, parallel form: φ(Q)φ(K)ᵀ (masked) applied to V, normalized.

    Args:
        q: ``(b, h, l_q, d)``; k: ``(b, h_kv, l_k, d)``; v: ``(b, h_kv, l_k, d_v)``.
        feature_map: ``"elu+1"``, ``"relu"``, ``"identity"`` or a function applied to q and k.
        causal: each query sees only the past and itself (bottom-right aligned).
        normalize: divide by the summed similarities (+ eps), as softmax does.
        eps: keeps the division finite when all similarities vanish.

    Returns:
        ``(b, h, l_q, d_v)``.
    """
    check_qkv(q, k, v)
    k, v = repeat_kv(k, q.shape[1]), repeat_kv(v, q.shape[1])
    phi_q, phi_k = _features(q, k, feature_map)
    return linear_attention_from_features(phi_q, phi_k, v, causal=causal,
                                          normalize=normalize, eps=eps)


def linear_attention_recurrent(q, k, v, feature_map="elu+1", *, normalize: bool = True,
                               eps: float = 1e-6, state=None, return_state: bool = False):
    """Causal linear attention as a recurrence over time: the same outputs, a d × d_v state.

        S_t = S_{t−1} + φ(k_t) v_tᵀ,   z_t = z_{t−1} + φ(k_t),   y_t = φ(q_t)ᵀ S_t / φ(q_t)ᵀ z_t

    Args:
        q: ``(b, h, l, d)``; k: ``(b, h_kv, l, d)``; v: ``(b, h_kv, l, d_v)``.
        feature_map, normalize, eps: as in :func:`linear_attention`.
        state: ``(S, z)`` to continue from, ``(b, h, m, d_v)`` and ``(b, h, m)`` with m the
            feature size; zeros when None.
        return_state: also return the final ``(S, z)``.

    Returns:
        y ``(b, h, l, d_v)``, and ``(S, z)`` when asked.
    """
    check_qkv(q, k, v)
    if q.shape[2] != k.shape[2]:
        raise ValueError(f"q and k must have one length here, got l_q = {q.shape[2]} and "
                         f"l_k = {k.shape[2]}")
    k, v = repeat_kv(k, q.shape[1]), repeat_kv(v, q.shape[1])
    phi_q, phi_k = _features(q, k, feature_map)                # (b, h, l, m)
    if state is None:
        S = phi_q.new_zeros(*phi_q.shape[:2], phi_q.shape[-1], v.shape[-1])  # (b, h, m, d_v)
        z = phi_q.new_zeros(*phi_q.shape[:2], phi_q.shape[-1])               # (b, h, m)
    else:
        S, z = state
        want = (*phi_q.shape[:2], phi_q.shape[-1])
        if tuple(S.shape) != (*want, v.shape[-1]) or tuple(z.shape) != want:
            raise ValueError(f"state must be (S, z) of shapes (b, h, m, d_v) = "
                             f"{(*want, v.shape[-1])} and (b, h, m) = {want}, got "
                             f"{tuple(S.shape)} and {tuple(z.shape)}")
    ys = []
    for t in range(q.shape[2]):
        S = S + phi_k[:, :, t, :, None] * v[:, :, t, None, :]  # + φ(k_t) v_tᵀ
        z = z + phi_k[:, :, t]
        y = (phi_q[:, :, t, None, :] @ S).squeeze(-2)          # φ(q_t)ᵀ S_t   (b, h, d_v)
        if normalize:
            y = y / ((phi_q[:, :, t] * z).sum(-1, keepdim=True) + eps)
        ys.append(y)
    y = torch.stack(ys, dim=2)                                 # (b, h, l, d_v)
    return (y, (S, z)) if return_state else y
