"""The selective scan as a GPU kernel, written in Triton — read it top to bottom.

Mamba's layer computes, for every batch element, channel ``d`` and state index ``n``,

    Δ_t = softplus(δ_t + bias)              (optional bias and softplus)
    h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t u_t   (A_bar = exp(ΔA), the input B_bar u = Δ B u)
    y_t = Σ_n C_t h_t + D u_t,    out_t = y_t · SiLU(z_t)

A plain PyTorch version materializes ``exp(ΔA)`` and ``ΔBu`` as ``(b, l, d, n)`` tensors:
``n`` times more bytes than the input, written to and read back from GPU memory (HBM)
several times. The kernel below never does. Its plan, the one of Gu & Dao (2023):

* **What a program owns.** One program instance (a "block" of GPU threads) owns one batch
  element and ``BLOCK_D`` channels. The channels are independent recurrences, so programs
  never talk to each other in the forward pass; ``b · d / BLOCK_D`` of them fill the GPU.
* **Where the state lives.** The state ``h`` of its channels, a ``(BLOCK_D, N)`` tile, lives
  in registers for the whole sequence. Each time step reads ``u_t, δ_t`` (``BLOCK_D``
  numbers) and ``B_t, C_t`` (``N`` numbers): the ``(b, l, d, n)`` tensors exist only one
  time step at a time, inside the chip. Time is walked in chunks of ``CHUNK`` steps; a
  chunk's outputs are collected in a ``(BLOCK_D, CHUNK)`` tile, and the skip ``D u`` and the
  gate ``SiLU(z)`` are applied to whole tiles, read and written in one go.
* **Why chunk boundaries are saved.** The backward pass needs every state again, in reverse
  time order. Storing all of them would cost the ``(b, l, d, n)`` tensor we just avoided, so
  the forward pass stores only the state entering each chunk: ``CHUNK`` times fewer bytes.
* **What is recomputed.** The backward pass walks the chunks from last to first. For each,
  it recomputes the chunk's ``CHUNK`` states from the saved boundary state with a parallel
  scan (``tl.associative_scan``), then runs the adjoint recurrence — which runs backwards in
  time — as a second scan over the chunk loaded with its time index flipped.

Where the time goes (measured on an H100, ``book/kernel_performance.md``): the forward pass
is about 13 times faster than the PyTorch parallel scan, yet moves only about a tenth of the
bytes per second that a plain copy does. Each program waits for one time step's loads
before it can start the next, so too few bytes are in flight; loading several steps ahead
is the next optimization.

Without a CUDA device the same kernels run in Triton's interpreter on CPU tensors (slow,
but exact enough to test every line). This module switches the interpreter on before it
imports Triton, and only when there is no GPU, so a GPU run is never slowed down.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import torch

if not torch.cuda.is_available():
    # Triton decides at import whether it interprets: PyTorch itself may have imported it
    # already (torch._dynamo does), which sseq.seed_everything prevents by setting this first.
    if "triton" in sys.modules and os.environ.get("TRITON_INTERPRET") != "1":
        raise RuntimeError(
            "Triton was imported before sseq.scan_triton on a machine without CUDA, so its CPU "
            "interpreter is off. Call sseq.seed_everything() first, or set TRITON_INTERPRET=1 "
            "before anything imports triton."
        )
    os.environ["TRITON_INTERPRET"] = "1"

import triton  # noqa: E402
import triton.language as tl  # noqa: E402

__all__ = ["INTERPRETED", "linear_scan_triton", "selective_scan_triton"]

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
# exp(x) = exp2(x · log2 e): the GPU's fast exponential is base 2.
LOG2E = tl.constexpr(1.4426950408889634)


# --------------------------------------------------------------------------------------------
# Small pieces shared by the kernels.
# --------------------------------------------------------------------------------------------


@triton.jit
def _softplus(x):
    """softplus(x) = log(1 + e^x), written as max(x, 0) + log(1 + e^{-|x|}) to never overflow."""
    return tl.maximum(x, 0.0) + tl.log(1.0 + tl.exp(-tl.abs(x)))


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
def _store_tile(ptr, base, rows, n_rows, cols, n_cols, value):
    """Store value (len(rows), len(cols)) at ptr[base + row · n_cols + col], inside bounds."""
    mask = (rows[:, None] < n_rows) & (cols[None, :] < n_cols)
    offsets = base + rows[:, None] * n_cols + cols[None, :]
    tl.store(ptr + offsets, value.to(ptr.dtype.element_ty), mask=mask)


@triton.jit
def _load_tile(ptr, base, rows, n_rows, cols, n_cols):
    """The (len(rows), len(cols)) tile ptr[base + row · n_cols + col] in fp32, zero outside."""
    mask = (rows[:, None] >= 0) & (rows[:, None] < n_rows) & (cols[None, :] < n_cols)
    offsets = base + rows[:, None] * n_cols + cols[None, :]
    return tl.load(ptr + offsets, mask=mask, other=0.0).to(tl.float32)


# --------------------------------------------------------------------------------------------
# Forward: one program = (batch element, BLOCK_D channels); the state stays in registers.
# --------------------------------------------------------------------------------------------


@triton.jit
def _selective_scan_fwd_kernel(
    u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr,  # inputs
    y_ptr, last_ptr, states_ptr,  # outputs: (b, l, d), (b, d, n), (b, chunks, d, n)
    L, DIM, NSTATE,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    SAVE_STATES: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
    CHUNK: tl.constexpr,
):
    pid_b = tl.program_id(0).to(tl.int64)
    d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)  # (BLOCK_D,) my channels
    n = tl.arange(0, BLOCK_N)  # (N,)
    d_ok = d < DIM
    A2 = _load_tile(A_ptr, 0, d, DIM, n, NSTATE) * LOG2E  # (BLOCK_D, N)
    bias = tl.load(bias_ptr + d, mask=d_ok, other=0.0).to(tl.float32)  # (BLOCK_D,)
    D_skip = tl.load(D_ptr + d, mask=d_ok, other=0.0).to(tl.float32)  # (BLOCK_D,)
    h = tl.zeros((BLOCK_D, BLOCK_N), dtype=tl.float32)  # the state: registers only
    steps = tl.arange(0, CHUNK)  # (T,)
    n_chunks = tl.cdiv(L, CHUNK)
    state_offsets = d[:, None] * NSTATE + n[None, :]
    state_mask = d_ok[:, None] & (n[None, :] < NSTATE)
    for c in range(n_chunks):
        if SAVE_STATES:  # the state entering chunk c, for the backward pass
            base = (pid_b * n_chunks + c) * DIM * NSTATE
            tl.store(states_ptr + base + state_offsets, h, mask=state_mask)
        y = tl.zeros((BLOCK_D, CHUNK), dtype=tl.float32)  # this chunk's ⟨C_t, h_t⟩, by column
        for i in tl.static_range(CHUNK):  # unrolled by the compiler
            t = c * CHUNK + i
            valid = t < L
            d_in = d < tl.where(valid, DIM, 0)  # my channels; none past the end
            n_in = n < tl.where(valid, NSTATE, 0)
            row = (pid_b * L + t) * DIM
            u = tl.load(u_ptr + row + d, mask=d_in, other=0.0).to(tl.float32)
            delta = tl.load(delta_ptr + row + d, mask=d_in, other=0.0).to(tl.float32)
            dt = _step_dt(delta, bias, valid, HAS_BIAS, SOFTPLUS)  # (BLOCK_D,)
            rn = (pid_b * L + t) * NSTATE + n[None, :]  # B_t, C_t as (1, N) rows
            B = tl.load(B_ptr + rn, mask=n_in[None, :], other=0.0).to(tl.float32)
            C = tl.load(C_ptr + rn, mask=n_in[None, :], other=0.0).to(tl.float32)
            # h_t = exp(Δ A) h_{t-1} + Δ B u, all (BLOCK_D, N), never leaving the chip
            h = tl.exp2(dt[:, None] * A2) * h + (dt * u)[:, None] * B
            y = tl.where(steps[None, :] == i, tl.sum(h * C, axis=1)[:, None], y)
        # The skip and the gate act on whole (BLOCK_D, T) tiles, stored in one go.
        t = c * CHUNK + steps
        offsets = pid_b * L * DIM + t[None, :] * DIM + d[:, None]  # (BLOCK_D, T)
        mask = d_ok[:, None] & (t[None, :] < L)
        if HAS_D:
            u = tl.load(u_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
            y += D_skip[:, None] * u
        if HAS_Z:
            z = tl.load(z_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
            y = y * z / (1.0 + tl.exp(-z))  # SiLU(z) = z σ(z)
        tl.store(y_ptr + offsets, y.to(y_ptr.dtype.element_ty), mask=mask)
    tl.store(last_ptr + pid_b * DIM * NSTATE + state_offsets, h, mask=state_mask)


# --------------------------------------------------------------------------------------------
# Backward: walk the chunks from last to first; recompute each chunk's states, then run the
# adjoint recurrence backwards through it. Derivatives, with λ_t = ∂loss/∂h_t:
#
#   dy_t = g_t · SiLU(z_t)                         (g = ∂loss/∂out)
#   λ_t  = C_t dy_t + A_bar_{t+1} λ_{t+1}           (runs backwards in time)
#   ∂Δ_t = Σ_n λ_t (B_t u_t + A · A_bar_t h_{t-1}),  ∂A = Σ_t λ_t A_bar_t h_{t-1} Δ_t
#   ∂u_t = D dy_t + Δ_t Σ_n λ_t B_t,   ∂B_t = Σ_d λ_t Δ_t u_t,   ∂C_t = Σ_d dy_t h_t
#
# A_bar_t h_{t-1} = h_t − Δ_t B_t u_t needs no shifted copy of h (and no division by A_bar).
# --------------------------------------------------------------------------------------------


@triton.jit
def _recompute_chunk(u_ptr, delta_ptr, B_ptr, C_ptr, states_ptr, io, bn, sn, t, L, d, DIM, n,
                     NSTATE, A2, bias, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr):
    """The chunk's states h (T, BLOCK_D, N) from the saved state entering it, by a parallel scan."""
    u = _load_tile(u_ptr, io, t, L, d, DIM)  # (T, BLOCK_D)
    delta = _load_tile(delta_ptr, io, t, L, d, DIM)
    dt = _step_dt(delta, bias[None, :], (t < L)[:, None], HAS_BIAS, SOFTPLUS)
    B = _load_tile(B_ptr, bn, t, L, n, NSTATE)  # (T, N)
    C = _load_tile(C_ptr, bn, t, L, n, NSTATE)
    A_bar = tl.exp2(dt[:, :, None] * A2[None, :, :])  # (T, BLOCK_D, N)
    Bu = (dt * u)[:, :, None] * B[:, None, :]  # (T, BLOCK_D, N)
    A_cum, h_from_zero = tl.associative_scan((A_bar, Bu), 0, _compose)
    h_start = _load_tile(states_ptr, sn, d, DIM, n, NSTATE)  # (BLOCK_D, N)
    h = A_cum * h_start[None, :, :] + h_from_zero  # (T, BLOCK_D, N)
    return h, Bu, dt, u, delta, B, C


@triton.jit
def _adjoint_chunk(delta_ptr, C_ptr, z_ptr, g_ptr, io, bn, t_flip, L, d, DIM, n, NSTATE, A2,
                   bias, lam_after, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
                   SOFTPLUS: tl.constexpr):
    """λ over the chunk, (T, BLOCK_D, N) in time order, from λ after it (BLOCK_D, N).

    λ runs backwards in time, so we load the chunk with its time index flipped (t_flip) and
    run an ordinary forward scan; one tl.flip puts the result back in time order.
    """
    delta_next = _load_tile(delta_ptr, io, t_flip + 1, L, d, DIM)  # (T, BLOCK_D) at t + 1
    dt_next = _step_dt(delta_next, bias[None, :], (t_flip + 1 < L)[:, None], HAS_BIAS, SOFTPLUS)
    A_bar_next = tl.exp2(dt_next[:, :, None] * A2[None, :, :])  # 1 past the end
    dy = _load_tile(g_ptr, io, t_flip, L, d, DIM)  # (T, BLOCK_D), zero past the end
    if HAS_Z:
        z = _load_tile(z_ptr, io, t_flip, L, d, DIM)
        dy = dy * z * tl.sigmoid(z)
    C = _load_tile(C_ptr, bn, t_flip, L, n, NSTATE)  # (T, N)
    A_cum, lam_from_zero = tl.associative_scan(
        (A_bar_next, dy[:, :, None] * C[:, None, :]), 0, _compose)
    lam_flipped = A_cum * lam_after[None, :, :] + lam_from_zero
    return tl.flip(lam_flipped, 0)


@triton.jit
def _selective_scan_bwd_kernel(
    u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, g_ptr, states_ptr, dlast_ptr,
    du_ptr, ddelta_ptr, dz_ptr, dA_ptr, dB_ptr, dC_ptr, dD_ptr, dbias_ptr,
    BATCH, L, DIM, NSTATE,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    HAS_DLAST: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, CHUNK: tl.constexpr,
):
    pid_b = tl.program_id(0).to(tl.int64)
    pid_d = tl.program_id(1)
    d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)  # (BLOCK_D,)
    n = tl.arange(0, BLOCK_N)  # (N,)
    i = tl.arange(0, CHUNK)  # (T,) position inside a chunk
    d_ok = d < DIM
    A = _load_tile(A_ptr, 0, d, DIM, n, NSTATE)  # (BLOCK_D, N)
    bias = tl.load(bias_ptr + d, mask=d_ok, other=0.0).to(tl.float32)
    D_skip = tl.load(D_ptr + d, mask=d_ok, other=0.0).to(tl.float32)
    lam = tl.zeros((BLOCK_D, BLOCK_N), dtype=tl.float32)  # λ after the current chunk
    if HAS_DLAST:  # the loss may also depend on the last state
        lam += _load_tile(dlast_ptr, pid_b * DIM * NSTATE, d, DIM, n, NSTATE)
    dA = tl.zeros((BLOCK_D, BLOCK_N), dtype=tl.float32)  # sums over this program's time steps
    dD = tl.zeros((BLOCK_D,), dtype=tl.float32)
    dbias = tl.zeros((BLOCK_D,), dtype=tl.float32)
    io, bn = pid_b * L * DIM, pid_b * L * NSTATE  # where this batch element's rows start
    n_chunks = tl.cdiv(L, CHUNK)
    for k in range(n_chunks):
        c = n_chunks - 1 - k  # chunks in reverse order
        t = c * CHUNK + i  # (T,)
        sn = (pid_b * n_chunks + c) * DIM * NSTATE
        h, Bu, dt, u, delta, B, C = _recompute_chunk(
            u_ptr, delta_ptr, B_ptr, C_ptr, states_ptr, io, bn, sn, t, L, d, DIM, n, NSTATE,
            A * LOG2E, bias, HAS_BIAS, SOFTPLUS)
        lam_chunk = _adjoint_chunk(
            delta_ptr, C_ptr, z_ptr, g_ptr, io, bn, c * CHUNK + CHUNK - 1 - i, L, d, DIM, n,
            NSTATE, A * LOG2E, bias, lam, HAS_Z, HAS_BIAS, SOFTPLUS)
        lam = tl.sum(tl.where(i[:, None, None] == 0, lam_chunk, 0.0), axis=0)  # λ at chunk start
        # Output side: the gate's gradient needs y, recomputed from h.
        g = _load_tile(g_ptr, io, t, L, d, DIM)  # (T, BLOCK_D)
        dy = g
        if HAS_Z:
            z = _load_tile(z_ptr, io, t, L, d, DIM)
            sig = tl.sigmoid(z)
            y = tl.sum(h * C[:, None, :], axis=2)  # (T, BLOCK_D)
            if HAS_D:
                y += D_skip[None, :] * u
            _store_tile(dz_ptr, io, t, L, d, DIM, g * y * sig * (1.0 + z * (1.0 - sig)))
            dy = g * z * sig  # SiLU'(z) = σ(z)(1 + z(1 − σ(z))) above
        dD += tl.sum(dy * u, axis=0)
        # Input side.
        lam_B = tl.sum(lam_chunk * B[:, None, :], axis=2)  # (T, BLOCK_D)
        Ah_prev = h - Bu  # A_bar_t h_{t-1}, (T, BLOCK_D, N)
        ddt = u * lam_B + tl.sum(lam_chunk * A[None, :, :] * Ah_prev, axis=2)  # (T, BLOCK_D)
        ddt = tl.where((t < L)[:, None], ddt, 0.0)
        dA += tl.sum(lam_chunk * Ah_prev * dt[:, :, None], axis=0)
        if SOFTPLUS:  # softplus'(x) = σ(x)
            ddt = ddt * tl.sigmoid(delta + bias[None, :])
        dbias += tl.sum(ddt, axis=0)
        du = dt * lam_B
        if HAS_D:
            du += D_skip[None, :] * dy
        _store_tile(du_ptr, io, t, L, d, DIM, du)
        _store_tile(ddelta_ptr, io, t, L, d, DIM, ddt)
        # ∂B, ∂C sum over channels: this program writes its partial sum (see _partial_sums).
        part = ((pid_d * BATCH + pid_b) * L) * NSTATE
        _store_tile(dB_ptr, part, t, L, n, NSTATE, tl.sum(lam_chunk * (dt * u)[:, :, None], 1))
        _store_tile(dC_ptr, part, t, L, n, NSTATE, tl.sum(h * dy[:, :, None], axis=1))
    _store_tile(dA_ptr, pid_b * DIM * NSTATE, d, DIM, n, NSTATE, dA)
    tl.store(dD_ptr + pid_b * DIM + d, dD, mask=d_ok)
    tl.store(dbias_ptr + pid_b * DIM + d, dbias, mask=d_ok)


# --------------------------------------------------------------------------------------------
# The plain linear scan h_t = a_t ⊙ h_{t-1} + b_t: the same structure, one number per state.
# Its output *is* every state, so the backward pass reads h instead of recomputing it, and
# walks time backwards one step at a time with the index flipped: t = chunk end − 1 − i.
# --------------------------------------------------------------------------------------------


@triton.jit
def _linear_scan_fwd_kernel(a_ptr, b_ptr, h0_ptr, h_ptr, L, F, HAS_H0: tl.constexpr,
                            BLOCK: tl.constexpr, CHUNK: tl.constexpr):
    pid_b = tl.program_id(0).to(tl.int64)
    f = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)  # (BLOCK,) my features
    ok = f < F
    h = tl.zeros((BLOCK,), dtype=tl.float32)
    if HAS_H0:
        h += tl.load(h0_ptr + pid_b * F + f, mask=ok, other=0.0).to(tl.float32)
    for c in range(tl.cdiv(L, CHUNK)):
        for i in tl.static_range(CHUNK):
            t = c * CHUNK + i
            m = f < tl.where(t < L, F, 0)  # my features; none past the end
            row = (pid_b * L + t) * F
            a = tl.load(a_ptr + row + f, mask=m, other=0.0).to(tl.float32)
            b = tl.load(b_ptr + row + f, mask=m, other=0.0).to(tl.float32)
            h = a * h + b
            tl.store(h_ptr + row + f, h.to(h_ptr.dtype.element_ty), mask=m)


@triton.jit
def _linear_scan_bwd_kernel(a_ptr, h0_ptr, h_ptr, g_ptr, da_ptr, db_ptr, dh0_ptr, L, F,
                            HAS_H0: tl.constexpr, BLOCK: tl.constexpr, CHUNK: tl.constexpr):
    """λ_t = g_t + a_{t+1} λ_{t+1};  ∂b_t = λ_t;  ∂a_t = λ_t h_{t-1};  ∂h0 = a_0 λ_0."""
    pid_b = tl.program_id(0).to(tl.int64)
    f = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    ok = f < F
    lam = tl.zeros((BLOCK,), dtype=tl.float32)
    a_next = tl.zeros((BLOCK,), dtype=tl.float32)  # a_{t+1}; zero past the end
    h0 = tl.zeros((BLOCK,), dtype=tl.float32)
    if HAS_H0:
        h0 += tl.load(h0_ptr + pid_b * F + f, mask=ok, other=0.0).to(tl.float32)
    n_chunks = tl.cdiv(L, CHUNK)
    for k in range(n_chunks):
        for i in tl.static_range(CHUNK):
            t = (n_chunks - 1 - k) * CHUNK + (CHUNK - 1 - i)  # flipped: latest step first
            m = f < tl.where(t < L, F, 0)
            row = (pid_b * L + t) * F
            lam = tl.load(g_ptr + row + f, mask=m, other=0.0).to(tl.float32) + a_next * lam
            m_prev = f < tl.where(t > 0, tl.where(t < L, F, 0), 0)  # h_{t-1} exists for t > 0
            h_prev = tl.load(h_ptr + row - F + f, mask=m_prev, other=0.0).to(tl.float32)
            h_prev = tl.where(t > 0, h_prev, h0)
            tl.store(da_ptr + row + f, (lam * h_prev).to(da_ptr.dtype.element_ty), mask=m)
            tl.store(db_ptr + row + f, lam.to(db_ptr.dtype.element_ty), mask=m)
            a_next = tl.load(a_ptr + row + f, mask=m, other=0.0).to(tl.float32)
    if HAS_H0:
        tl.store(dh0_ptr + pid_b * F + f, (a_next * lam).to(dh0_ptr.dtype.element_ty), mask=ok)


# --------------------------------------------------------------------------------------------
# Launch configuration and the autograd wrappers.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KernelConfig:
    """Block sizes: channels per program, warps per program, time steps per chunk."""

    block_d_fwd: int = 32
    warps_fwd: int = 4
    block_d_bwd: int = 16
    warps_bwd: int = 4
    chunk: int = 16
    block_linear: int = 256


# Chosen on an H100 with ``python -m sseq.kernel_bench --tune`` (b=8, l=4096, d=1536, n=16):
# the forward took 2.8-3.0 ms for 16 to 64 channels per program and 1 to 4 warps (more was
# slower), forward+backward about 12 ms for most backward block sizes; longer chunks (32)
# cost more in the backward than they save in the forward. The interpreter runs each program as
# NumPy code, one after the other: small blocks there make the tests cover partial blocks.
GPU_CONFIG = KernelConfig()
INTERPRETER_CONFIG = KernelConfig(block_d_fwd=4, warps_fwd=1, block_d_bwd=4, warps_bwd=1,
                                  chunk=8, block_linear=8)


def _config() -> KernelConfig:
    return INTERPRETER_CONFIG if INTERPRETED else GPU_CONFIG


def _pow2(x: int) -> int:
    return triton.next_power_of_2(max(int(x), 1))


def _block_d(preferred: int, elements_per_channel: int, budget: int) -> int:
    """Channels per program, so that the register tiles stay within ``budget`` numbers."""
    return max(1, min(preferred, budget // elements_per_channel))


def _check_device(*tensors: torch.Tensor) -> None:
    for x in tensors:
        if x is not None and x.is_cuda == INTERPRETED:
            want = "CPU tensors (Triton's interpreter)" if INTERPRETED else "CUDA tensors"
            raise ValueError(f"the Triton backend here needs {want}; got a tensor on {x.device}")


def _scan_forward(u, delta, A, B, C, D, z, delta_bias, softplus, save_states, cfg):
    """Launch the forward kernel. Returns y (b, l, d), last state (b, d, n) fp32, and the
    states entering each chunk (b, chunks, d, n) fp32 (None unless ``save_states``)."""
    batch, length, dim = u.shape
    nstate = A.shape[1]
    block_n = _pow2(nstate)
    block_d = _block_d(cfg.block_d_fwd, block_n, budget=4096)
    f32 = dict(device=u.device, dtype=torch.float32)
    y = torch.empty_like(u)
    last = torch.empty(batch, dim, nstate, **f32)
    states = torch.empty(batch, triton.cdiv(length, cfg.chunk), dim, nstate, **f32) \
        if save_states else None
    zeros = torch.zeros(dim, **f32)  # stands in for an absent D or delta_bias
    grid = (batch, triton.cdiv(dim, block_d))
    _selective_scan_fwd_kernel[grid](
        u, delta, A, B, C, zeros if D is None else D, u if z is None else z,
        zeros if delta_bias is None else delta_bias, y, last, last if states is None else states,
        length, dim, nstate, HAS_D=D is not None, HAS_Z=z is not None,
        HAS_BIAS=delta_bias is not None, SOFTPLUS=bool(softplus), SAVE_STATES=save_states,
        BLOCK_D=block_d, BLOCK_N=block_n, CHUNK=cfg.chunk, num_warps=cfg.warps_fwd)
    return y, last, states


def _scan_backward(saved, softplus, g, dlast, cfg):
    """Launch the backward kernel; returns the gradients of (u, delta, A, B, C, D, z, bias).

    ∂B and ∂C are sums over channels, which belong to different programs. Each program writes
    its partial sum to its own slice of a (blocks, b, l, n) buffer and PyTorch adds the slices:
    deterministic (the same bits on every run, unlike atomic adds) at the price of one extra
    buffer of (d / BLOCK_D) · b · l · n numbers. ∂A, ∂D, ∂bias are summed over batch likewise.
    """
    u, delta, A, B, C, D, z, delta_bias, states = saved
    batch, length, dim = u.shape
    nstate = A.shape[1]
    block_n = _pow2(nstate)
    block_d = _block_d(cfg.block_d_bwd, cfg.chunk * block_n, budget=4096)
    n_blocks = triton.cdiv(dim, block_d)
    f32 = dict(device=u.device, dtype=torch.float32)
    du, ddelta = torch.empty_like(u), torch.empty_like(delta)
    dz = None if z is None else torch.empty_like(z)
    dA = torch.empty(batch, dim, nstate, **f32)
    dB, dC = (torch.empty(n_blocks, batch, length, nstate, **f32) for _ in range(2))
    dD, dbias = torch.empty(batch, dim, **f32), torch.empty(batch, dim, **f32)
    zeros = torch.zeros(dim, **f32)
    _selective_scan_bwd_kernel[(batch, n_blocks)](
        u, delta, A, B, C, zeros if D is None else D, u if z is None else z,
        zeros if delta_bias is None else delta_bias, g, states, dA if dlast is None else dlast,
        du, ddelta, du if dz is None else dz, dA, dB, dC, dD, dbias, batch, length, dim, nstate,
        HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
        SOFTPLUS=bool(softplus), HAS_DLAST=dlast is not None, BLOCK_D=block_d,
        BLOCK_N=block_n, CHUNK=cfg.chunk, num_warps=cfg.warps_bwd)
    return (du, ddelta, dA.sum(0).to(A.dtype), dB.sum(0).to(B.dtype), dC.sum(0).to(C.dtype),
            None if D is None else dD.sum(0).to(D.dtype), dz,
            None if delta_bias is None else dbias.sum(0).to(delta_bias.dtype))


class _SelectiveScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, softplus):
        save = any(ctx.needs_input_grad)
        ctx.cfg, ctx.softplus = _config(), softplus  # the backward must use the same chunks
        y, last, states = _scan_forward(u, delta, A, B, C, D, z, delta_bias, softplus, save,
                                        ctx.cfg)
        if save:
            ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, states)
        ctx.set_materialize_grads(False)
        return y, last

    @staticmethod
    def backward(ctx, g, dlast):
        u = ctx.saved_tensors[0]
        g = torch.zeros_like(u) if g is None else g.contiguous()
        dlast = None if dlast is None else dlast.float().contiguous()
        return (*_scan_backward(ctx.saved_tensors, ctx.softplus, g, dlast, ctx.cfg), None)


def selective_scan_triton(u, delta, A, B, C, D=None, z=None, delta_bias=None,
                          delta_softplus=False, return_last_state=False):
    """The selective scan of Mamba, fused in one Triton kernel (forward and backward).

    Same semantics as ``selective_scan_ref`` (batch-first); inputs are validated by
    :func:`sseq.scan.selective_scan`. Accumulates in fp32 whatever the input dtype.

    Args:
        u, delta: (b, l, d) input and raw step size.
        A: (d, n) diagonal state matrices (negative real parts for a stable scan).
        B, C: (b, l, n) input and output matrices, shared by all channels.
        D: (d,) skip, or None. z: (b, l, d) gate, or None. delta_bias: (d,) or None.
        delta_softplus: apply softplus to delta + delta_bias.
        return_last_state: also return the final state.

    Returns:
        y (b, l, d) in u's dtype, and the last state (b, d, n) in fp32 if asked for. Gradients
        flow to every tensor argument, through the last state too.
    """
    _check_device(u, delta, A, B, C, D, z, delta_bias)
    args = [None if x is None else x.contiguous() for x in (u, delta, A, B, C, D, z, delta_bias)]
    y, last = _SelectiveScan.apply(*args, bool(delta_softplus))
    return (y, last) if return_last_state else y


class _LinearScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, h0, out_dtype):
        batch, length, features = b.shape
        h = torch.empty(b.shape, device=b.device, dtype=out_dtype)
        block = min(_config().block_linear, _pow2(features))
        grid = (batch, triton.cdiv(features, block))
        _linear_scan_fwd_kernel[grid](a, b, a if h0 is None else h0, h, length, features,
                                      HAS_H0=h0 is not None, BLOCK=block, CHUNK=_config().chunk)
        ctx.save_for_backward(a, h0, h)
        ctx.block, ctx.b_dtype = block, b.dtype
        return h

    @staticmethod
    def backward(ctx, g):
        a, h0, h = ctx.saved_tensors
        batch, length, features = h.shape
        da, db = torch.empty_like(a), torch.empty(h.shape, device=h.device, dtype=ctx.b_dtype)
        dh0 = None if h0 is None else torch.empty_like(h0)
        grid = (batch, triton.cdiv(features, ctx.block))
        _linear_scan_bwd_kernel[grid](a, h0 if h0 is not None else a, h, g.contiguous(), da, db,
                                      da if dh0 is None else dh0, length, features,
                                      HAS_H0=h0 is not None, BLOCK=ctx.block,
                                      CHUNK=_config().chunk)
        return da, db, dh0, None


def linear_scan_triton(a, b, h0=None):
    """h_t = a_t ⊙ h_{t-1} + b_t along dim 1 (h_{-1} = h0, or 0), in Triton.

    Args:
        a, b: (b, l, ...) coefficients and inputs, same shape.
        h0: (b, ...) initial state, or None.

    Returns:
        h: (b, l, ...) every state, in the inputs' promoted dtype (computed in fp32);
        differentiable in a, b and h0.
    """
    _check_device(a, b, h0)
    if any(x is not None and x.is_complex() for x in (a, b, h0)):
        raise TypeError(f"linear_scan_triton is real-only; got a {a.dtype}, b {b.dtype}")
    out_dtype = torch.promote_types(a.dtype, b.dtype)
    if h0 is not None:
        out_dtype = torch.promote_types(out_dtype, h0.dtype)
    batch, length = b.shape[:2]
    flat = [a.reshape(batch, length, -1).contiguous(), b.reshape(batch, length, -1).contiguous()]
    h0_flat = None if h0 is None else h0.reshape(batch, -1).contiguous()
    return _LinearScan.apply(*flat, h0_flat, out_dtype).reshape(b.shape)
