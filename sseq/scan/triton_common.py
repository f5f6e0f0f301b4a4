"""What the Triton kernels of the selective scan share: the switch to Triton's CPU interpreter,
small ``@triton.jit`` pieces of arithmetic, the launch configuration, and launch helpers.

:mod:`sseq.scan.triton_kernel` (the kernels ``backend="triton"`` runs),
:mod:`sseq.scan.triton_kernel_v1` (their first versions) and :mod:`sseq.scan.triton_linear`
(the linear scan) import from here, and from nothing else of each other except that the
current kernels' launcher can run the first versions.

Without a CUDA device the kernels run in Triton's interpreter on CPU tensors (slow, but exact
enough to test every line). This module switches the interpreter on before it imports
Triton, and only when there is no GPU, so a GPU run is never slowed down.
"""
from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass

import torch

# SSEQ_TRITON_COMPILE_ONLY=1: compile for a GPU that is not here, to inspect what the compiler
# makes of the kernels (``python -m sseq.scan.compile_report``); nothing is launched.
COMPILE_ONLY = os.environ.get("SSEQ_TRITON_COMPILE_ONLY") == "1"
if not torch.cuda.is_available() and not COMPILE_ONLY:
    # The switch must be on before Triton is imported: a @triton.jit function is interpreted
    # or compiled according to it when it is defined, and Triton's own library functions
    # (tl.sum, tl.cdiv, ...) are defined when Triton is imported. PyTorch may have imported
    # Triton already (torch._dynamo does); sseq.seed_everything sets the switch first.
    if "triton" in sys.modules and os.environ.get("TRITON_INTERPRET") != "1":
        raise RuntimeError(
            "Triton was imported before sseq.scan's Triton kernels on a machine without CUDA, "
            "so its CPU interpreter is off. Call sseq.seed_everything() first, or set "
            "TRITON_INTERPRET=1 before anything imports triton."
        )
    os.environ["TRITON_INTERPRET"] = "1"

import triton  # noqa: E402
import triton.language as tl  # noqa: E402

__all__ = [
    "GPU_CONFIG",
    "INTERPRETED",
    "V1_CONFIG",
    "KernelConfig",
    "use_config",
]

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
# exp(x) = exp2(x · log2 e): the GPU's fast exponential is base 2.
LOG2E = tl.constexpr(1.4426950408889634)


# --------------------------------------------------------------------------------------------
# Small pieces shared by the kernels.
# --------------------------------------------------------------------------------------------


@triton.jit
def _log1p(e):
    """log(1 + e) to full relative precision for small e >= 0, where log(1 + e) itself loses
    e's digits (1 + e rounds to 1 for e below the precision's epsilon).

    Kahan's trick: w = 1 + e is rounded, but log(w) · e / (w − 1) is log(1 + e) to a few
    units in the last place, since the rounding of w cancels in the ratio; where w = 1,
    log(1 + e) = e to the precision.
    """
    w = 1.0 + e
    gap = w - 1.0
    return tl.where(gap == 0.0, e, tl.log(w) * (e / tl.where(gap == 0.0, 1.0, gap)))


@triton.jit
def _softplus(x):
    """softplus(x) = log(1 + e^x), as max(x, 0) + log1p(e^{-|x|}): never overflows, and keeps
    full relative precision far below 0, where softplus(x) ≈ e^x."""
    return tl.maximum(x, 0.0) + _log1p(tl.exp(-tl.abs(x)))


@triton.jit
def _decay(dt, A_log2e, valid):
    """A_bar = exp(Δ A) = 2^(Δ · A log2 e) on a tile of time steps, exactly 1 at the steps
    outside the sequence (``valid`` False), whatever A: Δ = 0 there, and 0 · A would be NaN
    for a mode A = −inf (one that forgets at once)."""
    return tl.exp2(dt * tl.where(valid, A_log2e, 0.0))


@triton.jit
def _compose(a_early, b_early, a_late, b_late):
    """Two affine steps h -> a h + b in a row are one: (a_late a_early, a_late b_early + b_late).

    The order matters (the operator is associative, not commutative): the early step first.
    """
    return a_late * a_early, a_late * b_early + b_late


@triton.jit
def _step_dt(delta, bias, valid, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr):
    """Δ = softplus(δ + bias), and Δ = 0 outside the sequence: then A_bar = 1 and B_bar u = 0,
    so a padded time step leaves the state unchanged."""
    if HAS_BIAS:
        delta = delta + bias
    if SOFTPLUS:
        delta = _softplus(delta)
    return tl.where(valid, delta, 0.0)


@triton.jit
def _delta_and_u_grads(ddt, dt, lam_B, dy, delta, bias, D_skip, HAS_D: tl.constexpr,
                       SOFTPLUS: tl.constexpr):
    """∂δ (through the softplus) and ∂u = Δ Σ_n λ B + D dy, from ∂Δ and Σ_n λ B (the backward
    pass's formulas below)."""
    if SOFTPLUS:  # softplus'(x) = σ(x)
        ddt = ddt * tl.sigmoid(delta + bias[None, :])
    du = dt * lam_B
    if HAS_D:
        du += D_skip[None, :] * dy
    return ddt, du


# --------------------------------------------------------------------------------------------
# Launch configuration and the autograd wrappers.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KernelConfig:
    """Launch parameters: channels and warps per program, time steps per chunk.

    ``chunk`` is the backward pass's chunk, hence also how often the forward pass saves a
    state; ``chunk_fwd`` is the forward pass's. The loop over the state index n is unrolled
    when n <= ``unroll_n`` (forward) or ``unroll_n_bwd`` (backward). ``version=1`` runs the
    first kernels, :mod:`sseq.scan.triton_kernel_v1`, with ``block_d``/``warps`` for its forward and
    ``block_d_bwd``/``warps_bwd`` for its backward.
    """

    version: int = 2
    block_d: int = 32
    warps: int = 1
    chunk_fwd: int = 16
    chunk: int = 8
    unroll_n: int = 16
    unroll_n_bwd: int = 1
    block_d_bwd: int = 16
    warps_bwd: int = 4
    block_linear: int = 128


# One warp of 32 threads, one channel each: every thread keeps a chunk of its channel in
# registers, and chunks of 16 steps forward and 8 backward fit there without (or almost
# without) spilling on an H100 (``python -m sseq.scan.compile_report``). Their speed has
# not been measured yet: see ``book/kernel_performance.md``.
GPU_CONFIG = KernelConfig()
# The first kernels, with the launch parameters they were measured with.
V1_CONFIG = KernelConfig(version=1, block_d=32, warps=4, chunk=16, block_d_bwd=16, warps_bwd=4)
# The interpreter runs each program as NumPy code, one after the other: small blocks there
# make the tests cover partial blocks and chunks.
INTERPRETER_CONFIG = KernelConfig(block_d=4, chunk_fwd=16, chunk=8, block_d_bwd=4, warps_bwd=1,
                                  block_linear=8)


_override: KernelConfig | None = None  # set by use_config


@contextlib.contextmanager
def use_config(config: KernelConfig):
    """Launch the kernels with ``config`` inside the ``with`` block (benchmarks, tuning, tests).

    A backward pass keeps the configuration of its forward pass, inside the block or not.
    """
    global _override
    if not isinstance(config, KernelConfig):
        raise TypeError(f"config must be a KernelConfig, got {type(config).__name__}")
    outer, _override = _override, config
    try:
        yield config
    finally:
        _override = outer


def _config() -> KernelConfig:
    """The configuration in use: use_config's, else the interpreter's or the GPU's default."""
    if _override is not None:
        return _override
    return INTERPRETER_CONFIG if INTERPRETED else GPU_CONFIG


def _pow2(x: int) -> int:
    return triton.next_power_of_2(max(int(x), 1))


def _launch(kernel, grid, *args, **constants):
    """``kernel[grid](*args, **constants)``, with integer arguments as the interpreter needs them.

    Compiled for a GPU, an integer argument such as the length ``L`` is a run-time value: one
    compiled kernel serves every length. In Triton's interpreter it would arrive as a
    one-element NumPy array, which the interpreter of Triton 3.6 cannot turn into the bound of
    a ``range`` loop under NumPy >= 2.4 (only 0-dimensional arrays convert to Python ints).
    There the integers go in as ``tl.constexpr`` values instead: Python ints inside the
    kernel, the same arithmetic, and nothing to recompile, since nothing is compiled. That
    interpreter also turns every value a kernel *assigns* into an array, so a loop bound is
    written out in the ``range(...)`` itself (``range(tl.cdiv(L, T))``), never named first.
    """
    if INTERPRETED:
        args = tuple(tl.constexpr(a) if type(a) is int else a for a in args)
    return kernel[grid](*args, **constants)


def _check_device(*tensors: torch.Tensor) -> None:
    if COMPILE_ONLY:
        return
    for x in tensors:
        if x is not None and x.is_cuda == INTERPRETED:
            want = "CPU tensors (Triton's interpreter)" if INTERPRETED else "CUDA tensors"
            raise ValueError(f"the Triton backend here needs {want}; got a tensor on {x.device}")


def _compute_dtype(u: torch.Tensor) -> torch.dtype:
    """The dtype the kernels compute in: float64 for float64 ``u``, else float32."""
    return torch.float64 if u.dtype == torch.float64 else torch.float32


_ACC = {torch.float32: tl.float32, torch.float64: tl.float64}  # the kernels' ACC, by dtype


def _flags(u, D, z, delta_bias, softplus, nstate):
    return dict(HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
                SOFTPLUS=bool(softplus), BLOCK_N=_pow2(nstate),
                ACC=_ACC[_compute_dtype(u)])


def _gradient_buffers(u, delta, z, nstate, n_blocks):
    """Outputs of a backward kernel: ∂u, ∂δ, ∂z like u, δ, z; ∂A (b, d, n); ∂B and ∂C as
    per-block partial sums (blocks, b, l, n); ∂D and ∂bias (b, d); those in the compute dtype
    (summed later)."""
    batch, length, dim = u.shape
    acc = dict(device=u.device, dtype=_compute_dtype(u))
    dB, dC = (torch.empty(n_blocks, batch, length, nstate, **acc) for _ in range(2))
    return (torch.empty_like(u), torch.empty_like(delta),
            None if z is None else torch.empty_like(z),
            torch.empty(batch, dim, nstate, **acc), dB, dC, torch.empty(batch, dim, **acc),
            torch.empty(batch, dim, **acc))


def _first_order_only(backend: str) -> None:
    """Refuse a backward pass run under create_graph=True: its gradients would be constants to
    autograd, and a second derivative through them silently wrong (zero or absent)."""
    if torch.is_grad_enabled():
        raise RuntimeError(
            f"backend={backend!r} computes first-order gradients only: its backward pass is "
            "compiled code that autograd cannot differentiate. For second-order gradients "
            "(create_graph=True) use backend='reference' or 'parallel'")
