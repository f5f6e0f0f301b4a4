"""The Performer: random features whose dot products estimate the softmax kernel.

Linear attention needs sim(q, k) = φ(q) · φ(k). The Performer (Choromanski et al., 2021)
finds features for the softmax kernel itself. For w ~ N(0, I_d),

    E[ exp(w·q − |q|²/2) · exp(w·k − |k|²/2) ] = exp(q · k),

so with m random vectors w_1..w_m the **positive random features**

    φ(x) = exp(W x − |x|²/2) / √m        (W: the m × d matrix of the w_r)

give an unbiased estimate φ(q)·φ(k) of exp(q·k), with error shrinking like 1/√m. Applied to
q/d^{1/4} and k/d^{1/4} the estimate is softmax attention's exp(q·k/√d), and attention costs
O(l · m · d) instead of O(l² · d). Drawing the w_r *orthogonal* to one another (each still
N(0, I) on its own) keeps the estimate unbiased and lowers its variance (FAVOR+).
"""

from __future__ import annotations

import math

import torch

from sseq.attention.linear import linear_attention_from_features
from sseq.attention.sdpa import check_qkv, repeat_kv, scaled_dot_product_attention

_SEED_OFFSET = 0x5EED_0F_F0  # see gaussian_projection

__all__ = ["gaussian_projection", "performer_attention", "performer_error",
           "positive_random_features", "softmax_kernel_estimate"]


def gaussian_projection(n_features: int, d: int, seed: int, *, orthogonal: bool = True,
                        dtype=torch.float64) -> torch.Tensor:
    """m random vectors w_r ~ N(0, I_d), as the rows of an ``(m, d)`` matrix.

    With ``orthogonal``, each group of d rows is orthogonal (QR of a Gaussian matrix), and
    each row is rescaled to the length of an independent Gaussian vector, so that every row
    on its own is still exactly N(0, I_d).
    """
    if isinstance(n_features, bool) or not isinstance(n_features, int) or n_features < 1:
        raise ValueError(f"n_features must be a positive int, got {n_features!r}")
    # Offset the seed: with seed 0 the rows would otherwise replay the very normals of any
    # q drawn from a generator seeded with 0, each feature aligned with a query.
    g = torch.Generator().manual_seed(_SEED_OFFSET + seed)
    if not orthogonal:
        return torch.randn(n_features, d, generator=g, dtype=torch.float64).to(dtype)
    blocks = []
    for _ in range(math.ceil(n_features / d)):
        Q, R = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
        Q = Q * torch.sgn(torch.diagonal(R))                    # uniform (Haar) rotations only
        blocks.append(Q.T)                                      # d orthonormal rows
    W = torch.cat(blocks)[:n_features]                          # (m, d), unit rows
    lengths = torch.randn(n_features, d, generator=g, dtype=torch.float64).norm(dim=1)
    return (W * lengths[:, None]).to(dtype)


def positive_random_features(x: torch.Tensor, W: torch.Tensor, *,
                             stabilize: str | None = None) -> torch.Tensor:
    """φ(x) = exp(W x − |x|²/2) / √m for each row x of ``x`` ``(..., l, d)`` → ``(..., l, m)``.

    Args:
        x: queries or keys, already scaled (by d^{-1/4} for softmax attention).
        W: ``(m, d)`` from :func:`gaussian_projection`.
        stabilize: ``"row"`` subtracts each row's largest exponent, ``"all"`` the largest of
            all rows (per batch and head). A common factor cancels in attention's ratio —
            per query row, or for all keys at once — and keeps exp from overflowing.
    """
    exponent = x @ W.T.to(x) - x.pow(2).sum(-1, keepdim=True) / 2         # (..., l, m)
    if stabilize == "row":
        exponent = exponent - exponent.amax(dim=-1, keepdim=True).detach()
    elif stabilize == "all":
        exponent = exponent - exponent.amax(dim=(-2, -1), keepdim=True).detach()
    elif stabilize is not None:
        raise ValueError(f"stabilize must be None, 'row' or 'all', got {stabilize!r}")
    return torch.exp(exponent) / math.sqrt(W.shape[0])


def softmax_kernel_estimate(q, k, n_features: int, seed: int, *,
                            orthogonal: bool = True) -> torch.Tensor:
    """The Performer's estimate of exp(q_i · k_j) for every pair: ``(..., l_q, l_k)``.

    Args:
        q: ``(..., l_q, d)``; k: ``(..., l_k, d)`` (not rescaled here).
    """
    W = gaussian_projection(n_features, q.shape[-1], seed, orthogonal=orthogonal,
                            dtype=q.dtype)
    return positive_random_features(q, W) @ positive_random_features(k, W).transpose(-2, -1)


def performer_attention(q, k, v, n_features: int, seed: int, *, causal: bool = False,
                        orthogonal: bool = True) -> torch.Tensor:
    """Softmax attention approximated with positive orthogonal random features (FAVOR+).

    Args:
        q: ``(b, h, l_q, d)``; k: ``(b, h_kv, l_k, d)``; v: ``(b, h_kv, l_k, d_v)``.
        n_features: m, the number of random features (the cost is O(l · m · d)).
        seed: seeds the random projection, shared by all heads.
        causal: prefix sums over the past only (bottom-right aligned).
        orthogonal: orthogonal random features (lower variance) or independent ones.

    Returns:
        ``(b, h, l_q, d_v)``, an estimate of ``scaled_dot_product_attention(q, k, v)``.
    """
    check_qkv(q, k, v)
    k, v = repeat_kv(k, q.shape[1]), repeat_kv(v, q.shape[1])
    d = q.shape[-1]
    W = gaussian_projection(n_features, d, seed, orthogonal=orthogonal, dtype=q.dtype)
    phi_q = positive_random_features(q / d**0.25, W, stabilize="row")   # (b, h, l_q, m)
    phi_k = positive_random_features(k / d**0.25, W, stabilize="all")   # (b, h, l_k, m)
    return linear_attention_from_features(phi_q, phi_k, v, causal=causal, eps=0.0)


def performer_error(q, k, v, feature_counts, seeds, *, orthogonal: bool = True,
                    causal: bool = False) -> dict:
    """Relative error of the Performer's output against exact softmax attention.

    Returns:
        ``{"n_features": [...], "error": [...], "spread": [...]}``: for each m, the mean over
        ``seeds`` of ‖ŷ − y‖ / ‖y‖ and its standard deviation over the seeds.
    """
    exact = scaled_dot_product_attention(q, k, v, causal=causal)
    out = {"n_features": [], "error": [], "spread": []}
    for m in feature_counts:
        errors = torch.tensor([
            ((performer_attention(q, k, v, m, s, causal=causal, orthogonal=orthogonal) - exact)
             .norm() / exact.norm()).item() for s in seeds])
        out["n_features"].append(int(m))
        out["error"].append(errors.mean().item())
        out["spread"].append(errors.std().item() if len(errors) > 1 else 0.0)
    return out
