"""Scans: the linear recurrence h_t = a_t ⊙ h_{t−1} + b_t, and Mamba's selective scan.

A selective state space model (Mamba; Gu & Dao, 2023) runs, for every channel, the
recurrence

    h_t = exp(Δ_t A) ⊙ h_{t−1} + Δ_t B_t u_t,        y_t = ⟨C_t, h_t⟩ + D u_t,

whose coefficients depend on the input. It is a *linear* recurrence in h, so it can be
computed in several ways, each a backend of this module with the same semantics:

* ``"reference"`` — the definition: a loop over time, written to be read.
* ``"parallel"`` — a log-depth associative scan (Blelloch, 1990) in PyTorch.
  It materializes the ``(b, l, d, n)`` states: a parallel scan without the kernel fusion
  of the Mamba paper's §3.3.
* ``"cpu"`` — a fused, compiled loop (numba) that never materializes them; see
  :mod:`sseq.scan.cpu` for why it is built that way.
* ``"triton"`` — the GPU kernels in :mod:`sseq.scan.triton_kernel` and
  :mod:`sseq.scan.triton_linear` (need ``triton``).

:data:`BACKENDS` lists those available here; ``backend="auto"`` picks the fastest one for
the inputs' device. Every backend is differentiable in every tensor argument: the PyTorch
ones to any order, ``"cpu"`` and ``"triton"`` (hand-written backward passes) to first order,
and asking them for a second derivative raises an error.

The family, one module per concept (imports run one way, from here down):

===============================  ===========================================================
:mod:`sseq.scan.reference`       the definitions (loops over time), the parallel scan, checks
:mod:`sseq.scan.prefix`          Hillis–Steele and Blelloch written to be read: work and depth
:mod:`sseq.scan.cpu`             the fused CPU loop (numba), forward and backward
:mod:`sseq.scan.triton_common`   what the Triton kernels share: interpreter switch, configs
:mod:`sseq.scan.triton_kernel`   the GPU kernels of the selective scan (chunked)
:mod:`sseq.scan.triton_kernel_v1`  their first, step-by-step versions, kept for comparison
:mod:`sseq.scan.triton_linear`   the GPU kernels of the linear scan
:mod:`sseq.scan.bench_cpu`       ``python -m sseq.bench scan``: the CPU backends side by side
:mod:`sseq.scan.bench_gpu`       ``python -m sseq.bench scan --device cuda``, and ``--tune``
:mod:`sseq.scan.compile_report`  what the compiler makes of the kernels, without a GPU
===============================  ===========================================================
"""

from __future__ import annotations

import importlib.util

import torch

from sseq.scan.reference import (
    _check_selective,
    _prepare_linear,
    _selective_scan_parallel,
    linear_scan_parallel,
    linear_scan_ref,
    selective_scan_ref,
)

try:
    from sseq.scan import cpu  # the fast CPU loop; needs numba
except ImportError:  # numba missing or broken: the CPU falls back to "parallel"
    cpu = None

__all__ = [
    "BACKENDS",
    "linear_scan",
    "linear_scan_parallel",
    "linear_scan_ref",
    "resolve_backend",
    "selective_scan",
    "selective_scan_ref",
]

_KNOWN = ("reference", "parallel", "cpu", "triton")
BACKENDS: tuple[str, ...] = ("reference", "parallel") + (("cpu",) if cpu else ()) + (
    ("triton",) if importlib.util.find_spec("triton") is not None else ())
_MISSING = {
    "cpu": "backend 'cpu' is numba-compiled and numba did not import: pip install numba",
    "triton": "backend 'triton' is a GPU kernel written in Triton, which is not installed "
              "(on a CPU it runs in Triton's interpreter): pip install triton",
}


def resolve_backend(backend: str = "auto", device: torch.device | str = "cpu") -> str:
    """The backend that ``backend`` names for tensors on ``device``.

    ``"auto"`` is ``"triton"`` on CUDA, ``"cpu"`` on the CPU, else ``"parallel"``, each when
    available. Raises ``ValueError`` for unknown names or a wrong device, ``ImportError`` for a
    known backend whose dependency is missing.
    """
    if not isinstance(backend, str) or backend not in ("auto", *_KNOWN):
        raise ValueError(f"backend must be 'auto' or one of BACKENDS = {BACKENDS}, "
                         f"got {backend!r}")
    device = torch.device(device)
    if backend == "auto":
        if device.type == "cuda" and "triton" in BACKENDS:
            return "triton"
        return "cpu" if device.type == "cpu" and "cpu" in BACKENDS else "parallel"
    if backend not in BACKENDS:
        raise ImportError(_MISSING[backend])
    if backend == "cpu" and device.type != "cpu":
        raise ValueError(f"backend 'cpu' needs CPU tensors, got tensors on {device}")
    return backend


def linear_scan(a, b, h0=None, backend="auto"):
    """h_t = a_t ⊙ h_{t−1} + b_t along dim 1, by the chosen backend.

    Args:
        a, b: ``(batch, l, ...)``, real or complex, any trailing shape.
        h0: ``(batch, ...)``, or None for zeros.
        backend: ``"auto"`` or a name in :data:`BACKENDS`.

    Returns:
        h: ``(batch, l, ...)``, every state, in the inputs' promoted dtype.
    """
    a_, b_, h0_, out_dtype = _prepare_linear(a, b, h0)
    name = resolve_backend(backend, a.device)
    if name == "triton" and backend == "auto" and a_.is_complex():
        name = "parallel"  # the Triton kernel is real-only
    if name == "reference":
        return linear_scan_ref(a_, b_, h0_).to(out_dtype)
    if name == "parallel":
        return linear_scan_parallel(a_, b_, h0_).to(out_dtype)
    if name == "cpu":
        return cpu.linear_scan(a_, b_, h0_).to(out_dtype)
    from sseq.scan import triton_linear

    return triton_linear.linear_scan_triton(a, b, h0)


def selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                   return_last_state=False, backend="auto"):
    """Mamba's selective scan by the chosen backend; semantics of :func:`selective_scan_ref`.

    Args:
        u, delta: ``(b, l, d)``.  A: ``(d, n)``, real.  B, C: ``(b, l, n)``.
        D, delta_bias: ``(d,)`` or None.  z: ``(b, l, d)`` or None.
        delta_softplus: apply softplus to Δ.  return_last_state: also return h_{l−1}.
        backend: ``"auto"`` or a name in :data:`BACKENDS`.

    Returns:
        y ``(b, l, d)`` in u's dtype, and when asked the last state ``(b, d, n)`` (float32, or
        float64 for float64 inputs). Gradients flow to every tensor, the last state included.
    """
    args = (u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
    _check_selective(*args)
    name = resolve_backend(backend, u.device)
    if name == "reference":
        return selective_scan_ref(*args)
    if name == "parallel":
        return _selective_scan_parallel(*args)
    if name == "cpu":
        return cpu.selective_scan_cpu(*args)
    from sseq.scan import triton_kernel

    return triton_kernel.selective_scan_triton(*args)
