"""What each view of a linear time-invariant SSM costs: time and memory against the length.

Chapter 4 runs one diagonal SSM — ``d`` channels of ``n`` complex modes — over sequences of
growing length L in three ways (:data:`VIEWS`):

* ``"recurrence"`` — :func:`sseq.ssm.recurrent`: O(L·n) work per channel in L dependent
  steps; it holds one state of n numbers (and the outputs it has produced);
* ``"convolution"`` — :func:`sseq.ssm.kernel` then :func:`sseq.ssm.convolve`: O(L·n) work for
  the Vandermonde kernel, which materializes all n·L powers λ_n^k at once, then O(L log L)
  for the FFT — every part parallel over positions;
* ``"FFT alone"`` — :func:`sseq.ssm.convolve` with the kernel already computed (as when one
  kernel serves a whole batch, or S4 computes it by its Cauchy kernel): O(L log L) time and
  O(L) memory.

Time is the median of a few runs on this machine; memory is the peak bytes of live tensors,
counted operator by operator (:func:`sseq.attention.peak_tensor_memory`), the same number
on every machine.
"""

from __future__ import annotations

import torch

from sseq.ssm import convolve, kernel, recurrent

__all__ = ["VIEWS", "random_diagonal_ssm", "view_cost"]

VIEWS = ("recurrence", "convolution", "FFT alone")


def random_diagonal_ssm(d: int, n: int, *, seed: int = 0):
    """A stable diagonal SSM, complex64: ``(A_bar, B_bar, C)``, each ``(d, n)``, |λ| = 0.99."""
    g = torch.Generator().manual_seed(seed)
    A_bar = 0.99 * torch.exp(1j * torch.rand(d, n, generator=g))  # (d, n)
    B_bar = torch.randn(d, n, generator=g, dtype=torch.complex64)
    C = torch.randn(d, n, generator=g, dtype=torch.complex64)
    return A_bar, B_bar, C


@torch.no_grad()
def view_cost(lengths, *, d: int = 16, n: int = 64, repeat: int = 3, seed: int = 0) -> dict:
    """Time and peak tensor memory of each view over one sequence ``(1, L, d)``, for each L.

    Returns:
        ``{view: {"seconds": [...], "bytes": [...]}}`` with one entry per length.
    """
    from sseq.attention.cost import peak_tensor_memory
    from sseq.bench import time_fn

    A_bar, B_bar, C = random_diagonal_ssm(d, n, seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    runs = {
        "recurrence": lambda u, K: recurrent(A_bar, B_bar, C, u, diagonal=True),
        "convolution": lambda u, K: convolve(u, kernel(A_bar, B_bar, C, u.shape[1],
                                                       diagonal=True).real),
        "FFT alone": lambda u, K: convolve(u, K),
    }
    out = {view: {"seconds": [], "bytes": []} for view in VIEWS}
    for L in lengths:
        u = torch.randn(1, L, d, generator=g)  # (b, l, d)
        K = kernel(A_bar, B_bar, C, L, diagonal=True).real  # (d, l), for "FFT alone"
        for view, run in runs.items():
            call = lambda r=run, u=u, K=K: r(u, K)  # noqa: E731 (bound now, not at the end)
            out[view]["seconds"].append(time_fn(call, repeat=repeat).median)
            out[view]["bytes"].append(peak_tensor_memory(call))
    return out
