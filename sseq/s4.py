"""S4's kernel for HiPPO: normal plus low rank, the Woodbury identity and a Cauchy kernel.

The convolutional view needs K_k = C A_bar^k B_bar for k < L (:mod:`sseq.ssm`). HiPPO-LegS
cannot be diagonalized stably (its eigenvector matrix has a condition number that grows
exponentially with N), and L dense matrix powers cost O(N² L). S4 (Gu et al. 2022, arXiv
2111.00396, §3 and Algorithm 1) computes the same kernel in four steps:

1. **Normal plus low rank.** A = S − P Pᵀ with P_n = sqrt(n + 1/2) and S normal
   (−I/2 plus a skew-symmetric matrix), so S = V Λ V* with V *unitary*: in that basis
   A = Λ − P̃ P̃*, diagonal plus rank one (DPLR), reached without any ill-conditioning
   (:func:`nplr_legs`).
2. **Generating function.** At the L roots of unity ω_j = exp(−2πij/L),
   K̂(ω) = Σ_{k<L} K_k ω^k = C̃ (I − ω A_bar)^{-1} B_bar with C̃ = C (I − A_bar^L): the
   truncated geometric series collapses, since ω^L = 1. K̂(ω_j) is the FFT of K.
3. **Bilinear discretization** turns the resolvent into one of A itself:
   (I − ω A_bar)^{-1} B_bar = (2/(1+ω)) (g(ω) I − A)^{-1} B,  g(ω) = (2/Δ)(1−ω)/(1+ω).
4. **Woodbury.** (g − Λ + P̃ P̃*)^{-1} = R − R P̃ (1 + P̃* R P̃)^{-1} P̃* R with R = (g − Λ)^{-1}
   diagonal, so K̂(ω) needs four sums of the form Σ_n a_n b_n / (g(ω) − λ_n): a **Cauchy
   kernel**, O(N) per frequency. One inverse FFT returns K.

Everything here is complex128: this module is about getting the numbers right, and the
tests compare it with the naive kernel (:func:`sseq.ssm.kernel_ref` of the dense bilinear
A_bar) in float64.
"""

from __future__ import annotations

import math
import numbers

import torch

from sseq.discretize import bilinear
from sseq.hippo import legs
from sseq.ssm import kernel, kernel_ref

__all__ = ["cauchy", "kernel_dplr", "kernel_eig", "kernel_naive", "legs_kernel", "nplr_legs"]


def nplr_legs(N: int):
    """HiPPO-LegS in the eigenbasis of its normal part: A = V (Λ − P̃ P̃*) V*.

    Returns:
        ``(Lambda, P, B, V)``: the eigenvalues Λ ``(n,)`` of S = A + P Pᵀ (all with real
        part −1/2), P̃ = V* P and B̃ = V* B ``(n,)``, and the unitary V ``(n, n)``; complex128.
    """
    A, B = legs(N)
    P = torch.sqrt(torch.arange(N, dtype=torch.float64) + 0.5)  # (n,)
    skew = A + torch.outer(P, P) + 0.5 * torch.eye(N, dtype=torch.float64)  # S + I/2
    # -i·skew is Hermitian: eigh gives real w and a unitary V with skew V = V diag(i w)
    w, V = torch.linalg.eigh(-1j * skew.to(torch.complex128))
    Lambda = torch.complex(torch.full_like(w, -0.5), w)
    Vh = V.conj().T
    return Lambda, Vh @ P.to(V.dtype), Vh @ B.to(V.dtype), V


def cauchy(v: torch.Tensor, z: torch.Tensor, Lambda: torch.Tensor) -> torch.Tensor:
    """The Cauchy kernel: Σ_n v_n / (z_j − λ_n) for every point z_j.

    Args:
        v, Lambda: ``(n,)``; z: ``(m,)``.

    Returns:
        ``(m,)``.
    """
    return (v / (z[:, None] - Lambda)).sum(-1)  # (m, n) summed over n


def _check(L, dt):
    if isinstance(L, bool) or not isinstance(L, numbers.Integral) or L < 1:
        raise ValueError(f"L must be a positive int, got {L!r}")
    if isinstance(dt, bool) or not isinstance(dt, numbers.Real) or not 0 < dt < math.inf:
        raise ValueError(f"dt must be a positive finite number, got {dt!r}")
    return int(L), float(dt)


def kernel_dplr(Lambda, P, B, C, dt: float, L: int) -> torch.Tensor:
    """The kernel K_k = C A_bar^k B_bar (k < L) of A = Λ − P P*, bilinear step ``dt``, as S4 does.

    Args:
        Lambda, P, B: ``(n,)`` complex: the diagonal, the low-rank vector and B, all in the
            basis where the normal part is diagonal (:func:`nplr_legs`).
        C: ``(n,)`` complex: the read-out row in that basis (C_original @ V).
        dt: the step Δ; L: the kernel length.

    Returns:
        K ``(L,)`` complex128 (real up to rounding when the system is real).
    """
    L, dt = _check(L, dt)
    Lambda, P, B, C = (torch.as_tensor(x).to(torch.complex128) for x in (Lambda, P, B, C))
    n = Lambda.shape[0]
    if any(x.shape != (n,) for x in (P, B, C)):
        raise ValueError(f"Lambda, P, B and C must all be (n,) = ({n},), got "
                         f"{[tuple(x.shape) for x in (P, B, C)]}")
    A = torch.diag(Lambda) - torch.outer(P, P.conj())  # (n, n), only to form C̃ once
    A_bar, _ = bilinear(A, B, dt)
    C_tilde = C - C @ torch.linalg.matrix_power(A_bar, L)  # C (I − A_bar^L)
    omega = torch.exp(-2j * math.pi * torch.arange(L, dtype=torch.float64) / L)  # (L,)
    # 2/((1+ω)(g − λ)) = 2 / ((2/Δ)(1−ω) − (1+ω) λ): finite at ω = −1, where g is infinite
    scale = (1 + omega) / 2  # (L,)
    g_scaled = (2 / dt) * (1 - omega)  # (L,) = (1+ω) g(ω)

    def k(a, b):  # (2/(1+ω)) Σ_n a_n b_n / (g(ω) − λ_n), a Cauchy kernel in disguise
        return 2 * ((a * b) / (g_scaled[:, None] - (1 + omega)[:, None] * Lambda)).sum(-1)

    Pc = P.conj()
    K_hat = k(C_tilde, B) - k(C_tilde, P) * scale * k(Pc, B) / (1 + scale * k(Pc, P))  # (L,)
    return torch.fft.ifft(K_hat)


def legs_kernel(C, dt: float, L: int) -> torch.Tensor:
    """S4's kernel of HiPPO-LegS with a real read-out ``C`` ``(n,)``: real, ``(L,)`` float64.

    The system is x' = A x + B u, y = C x with LegS's (A, B) (:func:`sseq.hippo.legs`),
    discretized by the bilinear rule with step ``dt``.
    """
    C = torch.as_tensor(C, dtype=torch.float64)
    if C.ndim != 1:
        raise ValueError(f"C must be (n,), got shape {tuple(C.shape)}")
    Lambda, P, B, V = nplr_legs(C.shape[0])
    return kernel_dplr(Lambda, P, B, C.to(V.dtype) @ V, dt, L).real


# --- Two other routes to the same kernel, for comparison ----------------------------------------


def kernel_naive(A, B, C, dt: float, L: int) -> torch.Tensor:
    """The definition: the dense bilinear A_bar and B_bar, then L matrix–vector products.

    Args:
        A: ``(n, n)``; B, C: ``(n,)`` (real or complex); dt, L: as :func:`kernel_dplr`.

    Returns:
        K ``(L,)``, by :func:`sseq.ssm.kernel_ref` (the response to a unit impulse).
    """
    L, dt = _check(L, dt)
    A_bar, B_bar = bilinear(A, B, dt)
    return kernel_ref(A_bar, B_bar, C, L)


def kernel_eig(A, B, C, dt: float, L: int) -> torch.Tensor:
    """The textbook shortcut: diagonalize A = W diag(λ) W⁻¹ and sum geometric series.

    Exact in exact arithmetic; in floating point it is as good as the eigenvector matrix W
    is conditioned — fine for a normal A, meaningless for HiPPO-LegS beyond N ≈ 20.

    Returns:
        K ``(L,)`` complex128 (real up to rounding for a real system, when W is well
        conditioned).
    """
    L, dt = _check(L, dt)
    A = torch.as_tensor(A).to(torch.complex128)
    lam, W = torch.linalg.eig(A)
    lam_bar, B_bar = bilinear(lam, torch.linalg.solve(W, torch.as_tensor(B).to(W.dtype)), dt,
                              diagonal=True)
    return kernel(lam_bar, B_bar, torch.as_tensor(C).to(W.dtype) @ W, L)
