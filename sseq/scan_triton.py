"""The selective scan as a GPU kernel, written in Triton — read it top to bottom.

Mamba's layer computes, for every batch element, channel ``d`` and state index ``n``,

    Δ_t = softplus(δ_t + bias)              (optional bias and softplus)
    h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t u_t   (A_bar = exp(ΔA), the input B_bar u = Δ B u)
    y_t = Σ_n C_t h_t + D u_t,    out_t = y_t · SiLU(z_t)

A plain PyTorch version materializes ``exp(ΔA)`` and ``ΔBu`` as ``(b, l, d, n)`` tensors:
``n`` times more bytes than the input, written to and read back from GPU memory (HBM)
several times. The kernel below never does. Its plan, the one of Gu & Dao (2023):

* **What a program owns.** One program instance (a "block" of GPU threads) owns one batch
  element and ``BLOCK_D`` channels, one channel per thread. The channels are independent
  recurrences, so programs never talk to each other in the forward pass.
* **Where the state lives.** The state of its channels, an ``(N, BLOCK_D)`` tile, lives in
  registers for the whole sequence. Time is walked in chunks of ``T`` steps: a chunk's
  ``u, δ, z`` arrive as ``(T, BLOCK_D)`` tiles, and for each state index ``n`` in turn the
  chunk's ``T`` states are computed at once, by a scan down the time axis of a tile that
  starts from the state entering the chunk. The ``(b, l, d, n)`` tensors exist one
  ``(T, BLOCK_D)`` slice at a time, inside the chip; ``y`` is accumulated over ``n`` in a
  tile and written once, after the skip ``D u`` and the gate ``SiLU(z)``.
* **Why chunk boundaries are saved.** The backward pass needs every state again, in reverse
  time order. Storing all of them would cost the ``(b, l, d, n)`` tensor we just avoided, so
  the forward pass stores only every ``CHUNK``-th state: ``CHUNK`` times fewer bytes.
* **What is recomputed.** The backward pass walks the chunks from last to first. For each,
  it recomputes the chunk's ``CHUNK`` states from the saved state with a parallel scan
  (``tl.associative_scan``), then runs the adjoint recurrence — which runs backwards in
  time — as a second scan over the chunk loaded with its time index flipped.

The first version of the forward kernel, kept below as ``_selective_scan_fwd_stepwise_kernel``,
walked time one step after the other with the whole ``(BLOCK_D, N)`` state. Measured on an
H100 (``book/kernel_performance.md``) it was about 13 times faster than the PyTorch parallel
scan, yet moved only about a tenth of the bytes per second that a plain copy does: each
step's loads waited on the step before, and each step summed ``C_t h_t`` across threads. The
chunked kernel issues a whole chunk's loads at once (and the next chunk's before computing
this one), and keeps each scan inside one thread.

Without a CUDA device the same kernels run in Triton's interpreter on CPU tensors (slow,
but exact enough to test every line). This module switches the interpreter on before it
imports Triton, and only when there is no GPU, so a GPU run is never slowed down.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import torch

# SSEQ_TRITON_COMPILE_ONLY=1: compile for a GPU that is not here, to inspect what the compiler
# makes of the kernels (``python -m sseq.kernel_bench --compile``); nothing is launched.
COMPILE_ONLY = os.environ.get("SSEQ_TRITON_COMPILE_ONLY") == "1"
if not torch.cuda.is_available() and not COMPILE_ONLY:
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

__all__ = ["GPU_CONFIG", "INTERPRETED", "STEPWISE_CONFIG", "KernelConfig", "selective_scan_triton"]

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
# Forward: one program = (batch element, BLOCK_D channels); time is walked in chunks of T steps.
#
# Inside a chunk the recurrence h_t = a_t h_{t-1} + x_t (a_t = exp(Δ_t A), x_t = Δ_t B_t u_t)
# is solved for all T steps at once by a scan down the time axis of (T, BLOCK_D) tiles, one
# state index n at a time. The scan starts from the state entering the chunk: its first step
# is h_0 = a_0 h_in + x_0. A chunk's loads are issued together, and the next chunk's before
# this one is computed, instead of every time step waiting for its own.
#
# Each thread owns one channel and all T steps of it, so the scan runs inside the thread,
# with no communication. The compiler would rather give a thread 4 neighbouring channels
# (one 16-byte load) and split the time steps across threads, which turns the scan into
# shuffles between threads: ``tl.max_contiguous(d, 1)`` tells it not to count on
# neighbouring channels being contiguous, and it then lays one channel per thread.
# --------------------------------------------------------------------------------------------


@triton.jit
def _selective_scan_fwd_kernel(
    u_ptr, delta_ptr, A_ptr, Bt_ptr, Ct_ptr, D_ptr, z_ptr, bias_ptr,  # inputs; B, C as (b, n, l)
    y_ptr, last_ptr, states_ptr,  # outputs: (b, l, d), (b, d, n), (b, l / SAVE_EVERY, n, d)
    L, DIM, NSTATE: tl.constexpr,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    SAVE_STATES: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, T: tl.constexpr,
    SAVE_EVERY: tl.constexpr, UNROLL_N: tl.constexpr,
):
    pid_b = tl.program_id(0).to(tl.int64)
    d = tl.max_contiguous(tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D), 1)  # my channels
    d_ok = d < DIM
    steps = tl.arange(0, T)  # (T,) position inside a chunk
    ns = tl.arange(0, BLOCK_N)  # (N,)
    bias = tl.load(bias_ptr + d, mask=d_ok, other=0.0).to(tl.float32)
    D_skip = tl.load(D_ptr + d, mask=d_ok, other=0.0).to(tl.float32)
    # The state entering the current chunk, (N, BLOCK_D): registers only. Row n is read and
    # replaced by masking, since a register tile cannot be indexed by a loop variable.
    H = tl.zeros((BLOCK_N, BLOCK_D), dtype=tl.float32)
    n_saved = tl.cdiv(L, SAVE_EVERY)
    state_tile = ns[:, None] * DIM + d[None, :]  # (N, BLOCK_D) offsets in an (n, d) slice
    state_mask = (ns[:, None] < NSTATE) & d_ok[None, :]
    if SAVE_STATES:  # the backward pass restarts from every SAVE_EVERY-th state; the first is 0
        tl.store(states_ptr + pid_b * n_saved * NSTATE * DIM + state_tile, H, mask=state_mask)
    io = (pid_b * L + steps[:, None]) * DIM + d[None, :]  # (T, BLOCK_D) offsets of chunk 0
    mask = (steps[:, None] < L) & d_ok[None, :]
    u_next = tl.load(u_ptr + io, mask=mask, other=0.0)
    delta_next = tl.load(delta_ptr + io, mask=mask, other=0.0)
    for c in range(tl.cdiv(L, T)):
        t = c * T + steps  # (T,)
        in_seq = t < L
        io = (pid_b * L + t[:, None]) * DIM + d[None, :]
        mask = in_seq[:, None] & d_ok[None, :]
        u = u_next.to(tl.float32)
        delta = delta_next.to(tl.float32)
        # Prefetch: the next chunk's loads go out now and arrive while this chunk computes.
        mask_next = (t[:, None] + T < L) & d_ok[None, :]
        u_next = tl.load(u_ptr + io + T * DIM, mask=mask_next, other=0.0)
        delta_next = tl.load(delta_ptr + io + T * DIM, mask=mask_next, other=0.0)
        if HAS_Z:  # needed only at the end of the chunk
            z = tl.load(z_ptr + io, mask=mask, other=0.0).to(tl.float32)
        dt = _step_dt(delta, bias[None, :], in_seq[:, None], HAS_BIAS, SOFTPLUS)  # (T, BLOCK_D)
        dt_u = dt * u
        y = tl.zeros((T, BLOCK_D), dtype=tl.float32)  # Σ_n C_t h_t, built one n at a time
        # Unrolled (N small), n is a constant in each copy and the masks below cost nothing.
        for n in tl.range(0, NSTATE, loop_unroll_factor=UNROLL_N):
            A_n = tl.load(A_ptr + d * NSTATE + n, mask=d_ok, other=0.0).to(tl.float32)
            bn = (pid_b * NSTATE + n) * L + t  # (T,): B and C arrive transposed, (b, n, l), so
            B_n = tl.load(Bt_ptr + bn, mask=in_seq, other=0.0).to(tl.float32)  # B_n is T
            C_n = tl.load(Ct_ptr + bn, mask=in_seq, other=0.0).to(tl.float32)  # numbers in a row
            a = tl.exp2(dt * (A_n * LOG2E)[None, :])  # A_bar = exp(Δ A), (T, BLOCK_D)
            x = dt_u * B_n[:, None]  # B_bar u = Δ B u
            h_in = tl.sum(tl.where(ns[:, None] == n, H, 0.0), axis=0)  # (BLOCK_D,)
            x = tl.where(steps[:, None] == 0, a * h_in[None, :] + x, x)
            _, h = tl.associative_scan((a, x), 0, _compose)  # every h_t of the chunk, this n
            y += h * C_n[:, None]
            h_out = tl.sum(tl.where(steps[:, None] == T - 1, h, 0.0), axis=0)  # past the end,
            H = tl.where(ns[:, None] == n, h_out[None, :], H)  # Δ = 0 keeps the state as is
            if SAVE_STATES:  # h_t enters step t + 1: keep it where t + 1 starts a saved chunk
                nxt = t + 1
                keep = (nxt % SAVE_EVERY == 0) & (nxt < L)
                at = ((pid_b * n_saved + nxt[:, None] // SAVE_EVERY) * NSTATE + n) * DIM
                tl.store(states_ptr + at + d[None, :], h, mask=keep[:, None] & d_ok[None, :])
        # The skip and the gate act on whole tiles; y is written once.
        if HAS_D:
            y += D_skip[None, :] * u
        if HAS_Z:
            y = y * z * tl.sigmoid(z)  # SiLU(z) = z σ(z)
        tl.store(y_ptr + io, y.to(y_ptr.dtype.element_ty), mask=mask)
    last = pid_b * DIM * NSTATE + d[None, :] * NSTATE + ns[:, None]  # (b, d, n)
    tl.store(last_ptr + last, H, mask=state_mask)


@triton.jit
def _selective_scan_fwd_stepwise_kernel(
    u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr,  # inputs
    y_ptr, last_ptr, states_ptr,  # outputs: (b, l, d), (b, d, n), (b, l / CHUNK, n, d)
    L, DIM, NSTATE,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    SAVE_STATES: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
    CHUNK: tl.constexpr,
):
    """The first version, kept to compare against: one time step after the other, the whole
    (BLOCK_D, N) state updated at each. Simple, but each step's loads wait on the step before,
    and ⟨C_t, h_t⟩ is a sum across threads at every step (``book/kernel_performance.md``)."""
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
    state_mask = d_ok[:, None] & (n[None, :] < NSTATE)
    for c in range(n_chunks):
        if SAVE_STATES:  # the state entering chunk c, for the backward pass
            base = (pid_b * n_chunks + c) * DIM * NSTATE
            tl.store(states_ptr + base + n[None, :] * DIM + d[:, None], h, mask=state_mask)
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
            h = tl.exp2(dt[:, None] * A2) * h + (dt * u)[:, None] * B
            y = tl.where(steps[None, :] == i, tl.sum(h * C, axis=1)[:, None], y)
        t = c * CHUNK + steps
        offsets = pid_b * L * DIM + t[None, :] * DIM + d[:, None]  # (BLOCK_D, T)
        mask = d_ok[:, None] & (t[None, :] < L)
        if HAS_D:
            u = tl.load(u_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
            y += D_skip[:, None] * u
        if HAS_Z:
            z = tl.load(z_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
            y = y * z * tl.sigmoid(z)
        tl.store(y_ptr + offsets, y.to(y_ptr.dtype.element_ty), mask=mask)
    tl.store(last_ptr + pid_b * DIM * NSTATE + d[:, None] * NSTATE + n[None, :], h,
             mask=state_mask)


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
    h_start = tl.trans(_load_tile(states_ptr, sn, n, NSTATE, d, DIM))  # (BLOCK_D, N)
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
# Launch configuration and the autograd wrappers.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KernelConfig:
    """Launch parameters: channels and warps per program, time steps per chunk.

    ``forward`` picks the chunked forward kernel or the step-by-step first version (which
    uses ``block_d_fwd`` and ``warps_fwd`` too, and ``chunk`` as its chunk length). ``chunk``
    is the backward pass's chunk, hence also how often the forward pass saves a state. The
    forward unrolls its loop over the state index n when n <= ``unroll_n``.
    """

    forward: str = "chunked"
    block_d_fwd: int = 32
    warps_fwd: int = 1
    chunk_fwd: int = 16
    unroll_n: int = 16
    block_d_bwd: int = 16
    warps_bwd: int = 4
    chunk: int = 16
    block_linear: int = 128


# One warp of 32 threads, one channel each, 16 time steps per chunk: on an H100 (sm_90) the
# forward then needs 140 registers and spills none (``python -m sseq.kernel_bench --compile``).
# Its speed has not been measured yet: see ``book/kernel_performance.md``.
GPU_CONFIG = KernelConfig()
# The first, step-by-step forward, with the launch parameters it was measured with.
STEPWISE_CONFIG = KernelConfig(forward="stepwise", block_d_fwd=32, warps_fwd=4)
# The interpreter runs each program as NumPy code, one after the other: small blocks there
# make the tests cover partial blocks and chunks.
INTERPRETER_CONFIG = KernelConfig(block_d_fwd=4, warps_fwd=1, chunk_fwd=16, block_d_bwd=4,
                                  warps_bwd=1, chunk=8, block_linear=8)


def _config() -> KernelConfig:
    return INTERPRETER_CONFIG if INTERPRETED else GPU_CONFIG


def _pow2(x: int) -> int:
    return triton.next_power_of_2(max(int(x), 1))


def _block_d(preferred: int, elements_per_channel: int, budget: int) -> int:
    """Channels per program, so that the register tiles stay within ``budget`` numbers."""
    return max(1, min(preferred, budget // elements_per_channel))


def _check_device(*tensors: torch.Tensor) -> None:
    if COMPILE_ONLY:
        return
    for x in tensors:
        if x is not None and x.is_cuda == INTERPRETED:
            want = "CPU tensors (Triton's interpreter)" if INTERPRETED else "CUDA tensors"
            raise ValueError(f"the Triton backend here needs {want}; got a tensor on {x.device}")


def _scan_forward(u, delta, A, B, C, D, z, delta_bias, softplus, save_states, cfg):
    """Launch the forward kernel. Returns y (b, l, d), last state (b, d, n) fp32, and the
    states entering each backward chunk (b, chunks, n, d) fp32 (None unless ``save_states``)."""
    batch, length, dim = u.shape
    nstate = A.shape[1]
    block_n = _pow2(nstate)
    f32 = dict(device=u.device, dtype=torch.float32)
    y = torch.empty_like(u)
    last = torch.empty(batch, dim, nstate, **f32)
    states = torch.empty(batch, triton.cdiv(length, cfg.chunk), nstate, dim, **f32) \
        if save_states else None
    zeros = torch.zeros(dim, **f32)  # stands in for an absent D or delta_bias
    args = (u, delta, A, B, C, zeros if D is None else D, u if z is None else z,
            zeros if delta_bias is None else delta_bias, y, last,
            last if states is None else states, length, dim, nstate)
    flags = dict(HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
                 SOFTPLUS=bool(softplus), SAVE_STATES=save_states, BLOCK_N=block_n,
                 num_warps=cfg.warps_fwd)
    if cfg.forward == "chunked":
        block_d = _block_d(cfg.block_d_fwd, 1, budget=4096)
        args = (*args[:3], B.transpose(1, 2).contiguous(), C.transpose(1, 2).contiguous(),
                *args[5:])
        _selective_scan_fwd_kernel[(batch, triton.cdiv(dim, block_d))](
            *args, **flags, BLOCK_D=block_d, T=cfg.chunk_fwd, SAVE_EVERY=cfg.chunk,
            UNROLL_N=nstate if nstate <= cfg.unroll_n else 1)
    elif cfg.forward == "stepwise":
        block_d = _block_d(cfg.block_d_fwd, block_n, budget=4096)
        _selective_scan_fwd_stepwise_kernel[(batch, triton.cdiv(dim, block_d))](
            *args, **flags, BLOCK_D=block_d, CHUNK=cfg.chunk)
    else:
        raise ValueError(f"forward must be 'chunked' or 'stepwise', got {cfg.forward!r}")
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
