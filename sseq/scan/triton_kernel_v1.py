"""The first versions of the selective-scan kernels, kept to compare against the current ones.

:mod:`sseq.scan.triton_kernel` holds the kernels that ``backend="triton"`` runs; this module holds
the ones they replaced, measured on an H100 in ``book/kernel_performance.md``, so that a
benchmark can time both in one run (``KernelConfig(version=1)``, the ``triton-v1`` rows of
``python -m sseq.bench scan --device cuda``).

* The forward pass walks time one step after the other, with the whole ``(BLOCK_D, N)``
  state of its channels in registers. Simple — but, most likely, each step's loads waited on
  the step before, and ``⟨C_t, h_t⟩`` is a sum across threads at every step.
* The backward pass recomputes a chunk's states as a ``(T, BLOCK_D, N)`` tile and runs the
  adjoint over the same tile: big tiles, spread over many threads, so the scans and the sums
  over ``n`` and over channels make threads wait for each other.

Both save and read the states entering each chunk in the layout of the current kernels,
``(b, chunks, n, d)``.
"""

from __future__ import annotations

import torch

from sseq.scan.triton_common import (
    _ACC,
    LOG2E,
    _compose,
    _compute_dtype,
    _decay,
    _delta_and_u_grads,
    _gradient_buffers,
    _launch,
    _pow2,
    _step_dt,
    triton,
)

tl = triton.language

__all__ = ["backward", "forward"]


def _block_d(preferred: int, elements_per_channel: int, budget: int) -> int:
    """Channels per program, so that the register tiles stay within ``budget`` numbers."""
    return max(1, min(preferred, budget // elements_per_channel))


@triton.jit
def _store_tile(ptr, base, rows, n_rows, cols, n_cols, value):
    """Store value (len(rows), len(cols)) at ptr[base + row · n_cols + col], inside bounds."""
    mask = (rows[:, None] < n_rows) & (cols[None, :] < n_cols)
    offsets = base + rows[:, None] * n_cols + cols[None, :]
    tl.store(ptr + offsets, value.to(ptr.dtype.element_ty), mask=mask)


@triton.jit
def _load_tile(ptr, base, rows, n_rows, cols, n_cols, ACC: tl.constexpr):
    """The (len(rows), len(cols)) tile ptr[base + row · n_cols + col] in the compute dtype
    ``ACC``, zero outside."""
    mask = (rows[:, None] >= 0) & (rows[:, None] < n_rows) & (cols[None, :] < n_cols)
    offsets = base + rows[:, None] * n_cols + cols[None, :]
    return tl.load(ptr + offsets, mask=mask, other=0.0).to(ACC)


@triton.jit
def _selective_scan_fwd_stepwise_kernel(
    u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr,  # inputs
    y_ptr, last_ptr, states_ptr,  # outputs: (b, l, d), (b, d, n), (b, l / CHUNK, n, d)
    L, DIM, NSTATE,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    SAVE_STATES: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
    CHUNK: tl.constexpr, ACC: tl.constexpr,
):
    pid_b = tl.program_id(0).to(tl.int64)
    d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)  # (BLOCK_D,) my channels
    n = tl.arange(0, BLOCK_N)  # (N,)
    d_ok = d < DIM
    A2 = _load_tile(A_ptr, 0, d, DIM, n, NSTATE, ACC) * LOG2E  # (BLOCK_D, N)
    bias = tl.load(bias_ptr + d, mask=d_ok, other=0.0).to(ACC)  # (BLOCK_D,)
    D_skip = tl.load(D_ptr + d, mask=d_ok, other=0.0).to(ACC)  # (BLOCK_D,)
    h = tl.zeros((BLOCK_D, BLOCK_N), dtype=ACC)  # the state: registers only
    steps = tl.arange(0, CHUNK)  # (T,)
    n_chunks = tl.cdiv(L, CHUNK)
    state_mask = d_ok[:, None] & (n[None, :] < NSTATE)
    for c in range(tl.cdiv(L, CHUNK)):  # the bound written out: see triton_common._launch
        if SAVE_STATES:  # the state entering chunk c, for the backward pass
            base = (pid_b * n_chunks + c) * DIM * NSTATE
            tl.store(states_ptr + base + n[None, :] * DIM + d[:, None], h, mask=state_mask)
        y = tl.zeros((BLOCK_D, CHUNK), dtype=ACC)  # this chunk's ⟨C_t, h_t⟩, by column
        for i in tl.static_range(CHUNK):  # unrolled by the compiler
            t = c * CHUNK + i
            valid = t < L
            d_in = d < tl.where(valid, DIM, 0)  # my channels; none past the end
            n_in = n < tl.where(valid, NSTATE, 0)
            row = (pid_b * L + t) * DIM
            u = tl.load(u_ptr + row + d, mask=d_in, other=0.0).to(ACC)
            delta = tl.load(delta_ptr + row + d, mask=d_in, other=0.0).to(ACC)
            dt = _step_dt(delta, bias, valid, HAS_BIAS, SOFTPLUS)  # (BLOCK_D,)
            rn = (pid_b * L + t) * NSTATE + n[None, :]  # B_t, C_t as (1, N) rows
            B = tl.load(B_ptr + rn, mask=n_in[None, :], other=0.0).to(ACC)
            C = tl.load(C_ptr + rn, mask=n_in[None, :], other=0.0).to(ACC)
            h = _decay(dt[:, None], A2, valid) * h + (dt * u)[:, None] * B
            y = tl.where(steps[None, :] == i, tl.sum(h * C, axis=1)[:, None], y)
        t = c * CHUNK + steps
        offsets = pid_b * L * DIM + t[None, :] * DIM + d[:, None]  # (BLOCK_D, T)
        mask = d_ok[:, None] & (t[None, :] < L)
        if HAS_D:
            u = tl.load(u_ptr + offsets, mask=mask, other=0.0).to(ACC)
            y += D_skip[:, None] * u
        if HAS_Z:
            z = tl.load(z_ptr + offsets, mask=mask, other=0.0).to(ACC)
            y = y * z * tl.sigmoid(z)
        tl.store(y_ptr + offsets, y.to(y_ptr.dtype.element_ty), mask=mask)
    tl.store(last_ptr + pid_b * DIM * NSTATE + d[:, None] * NSTATE + n[None, :], h,
             mask=state_mask)


# --------------------------------------------------------------------------------------------
# Backward, first version: walk the chunks from last to first; recompute each chunk's states,
# all n at once, then run the adjoint recurrence backwards through them (the derivatives are
# written out above the current backward kernel, in sseq/scan/triton_kernel.py).
# --------------------------------------------------------------------------------------------


@triton.jit
def _recompute_chunk(u_ptr, delta_ptr, B_ptr, C_ptr, states_ptr, io, bn, sn, t, L, d, DIM, n,
                     NSTATE, A2, bias, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
                     ACC: tl.constexpr):
    """The chunk's states h (T, BLOCK_D, N) from the saved state entering it, by a parallel scan."""
    u = _load_tile(u_ptr, io, t, L, d, DIM, ACC)  # (T, BLOCK_D)
    delta = _load_tile(delta_ptr, io, t, L, d, DIM, ACC)
    dt = _step_dt(delta, bias[None, :], (t < L)[:, None], HAS_BIAS, SOFTPLUS)
    B = _load_tile(B_ptr, bn, t, L, n, NSTATE, ACC)  # (T, N)
    C = _load_tile(C_ptr, bn, t, L, n, NSTATE, ACC)
    A_bar = _decay(dt[:, :, None], A2[None, :, :], (t < L)[:, None, None])  # (T, BLOCK_D, N)
    Bu = (dt * u)[:, :, None] * B[:, None, :]  # (T, BLOCK_D, N)
    A_cum, h_from_zero = tl.associative_scan((A_bar, Bu), 0, _compose)
    h_start = tl.trans(_load_tile(states_ptr, sn, n, NSTATE, d, DIM, ACC))  # (BLOCK_D, N)
    h = A_cum * h_start[None, :, :] + h_from_zero  # (T, BLOCK_D, N)
    return h, Bu, dt, u, delta, B, C


@triton.jit
def _adjoint_chunk(delta_ptr, C_ptr, z_ptr, g_ptr, io, bn, t_flip, L, d, DIM, n, NSTATE, A2,
                   bias, lam_after, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
                   SOFTPLUS: tl.constexpr, ACC: tl.constexpr):
    """λ over the chunk, (T, BLOCK_D, N) in time order, from λ after it (BLOCK_D, N).

    λ runs backwards in time, so we load the chunk with its time index flipped (t_flip) and
    run an ordinary forward scan; one tl.flip puts the result back in time order.
    """
    delta_next = _load_tile(delta_ptr, io, t_flip + 1, L, d, DIM, ACC)  # (T, BLOCK_D) at t + 1
    dt_next = _step_dt(delta_next, bias[None, :], (t_flip + 1 < L)[:, None], HAS_BIAS, SOFTPLUS)
    A_bar_next = _decay(dt_next[:, :, None], A2[None, :, :],
                        (t_flip + 1 < L)[:, None, None])  # 1 past the end
    dy = _load_tile(g_ptr, io, t_flip, L, d, DIM, ACC)  # (T, BLOCK_D), zero past the end
    if HAS_Z:
        z = _load_tile(z_ptr, io, t_flip, L, d, DIM, ACC)
        dy = dy * z * tl.sigmoid(z)
    C = _load_tile(C_ptr, bn, t_flip, L, n, NSTATE, ACC)  # (T, N)
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
    ACC: tl.constexpr,
):
    pid_b = tl.program_id(0).to(tl.int64)
    pid_d = tl.program_id(1)
    d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)  # (BLOCK_D,)
    n = tl.arange(0, BLOCK_N)  # (N,)
    i = tl.arange(0, CHUNK)  # (T,) position inside a chunk
    d_ok = d < DIM
    A = _load_tile(A_ptr, 0, d, DIM, n, NSTATE, ACC)  # (BLOCK_D, N)
    bias = tl.load(bias_ptr + d, mask=d_ok, other=0.0).to(ACC)
    D_skip = tl.load(D_ptr + d, mask=d_ok, other=0.0).to(ACC)
    lam = tl.zeros((BLOCK_D, BLOCK_N), dtype=ACC)  # λ after the current chunk
    if HAS_DLAST:  # the loss may also depend on the last state
        lam += _load_tile(dlast_ptr, pid_b * DIM * NSTATE, d, DIM, n, NSTATE, ACC)
    dA = tl.zeros((BLOCK_D, BLOCK_N), dtype=ACC)  # sums over this program's time steps
    dD = tl.zeros((BLOCK_D,), dtype=ACC)
    dbias = tl.zeros((BLOCK_D,), dtype=ACC)
    io, bn = pid_b * L * DIM, pid_b * L * NSTATE  # where this batch element's rows start
    n_chunks = tl.cdiv(L, CHUNK)
    for k in range(tl.cdiv(L, CHUNK)):  # the bound written out: see triton_common._launch
        c = n_chunks - 1 - k  # chunks in reverse order
        t = c * CHUNK + i  # (T,)
        sn = (pid_b * n_chunks + c) * DIM * NSTATE
        h, Bu, dt, u, delta, B, C = _recompute_chunk(
            u_ptr, delta_ptr, B_ptr, C_ptr, states_ptr, io, bn, sn, t, L, d, DIM, n, NSTATE,
            A * LOG2E, bias, HAS_BIAS, SOFTPLUS, ACC)
        lam_chunk = _adjoint_chunk(
            delta_ptr, C_ptr, z_ptr, g_ptr, io, bn, c * CHUNK + CHUNK - 1 - i, L, d, DIM, n,
            NSTATE, A * LOG2E, bias, lam, HAS_Z, HAS_BIAS, SOFTPLUS, ACC)
        lam = tl.sum(tl.where(i[:, None, None] == 0, lam_chunk, 0.0), axis=0)  # λ at chunk start
        # Output side: the gate's gradient needs y, recomputed from h.
        g = _load_tile(g_ptr, io, t, L, d, DIM, ACC)  # (T, BLOCK_D)
        dy = g
        if HAS_Z:
            z = _load_tile(z_ptr, io, t, L, d, DIM, ACC)
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
        ddt, du = _delta_and_u_grads(ddt, dt, lam_B, dy, delta, bias, D_skip, HAS_D, SOFTPLUS)
        dbias += tl.sum(ddt, axis=0)
        _store_tile(du_ptr, io, t, L, d, DIM, du)
        _store_tile(ddelta_ptr, io, t, L, d, DIM, ddt)
        # ∂B, ∂C sum over channels: each program writes a partial sum (see _scan_backward).
        part = ((pid_d * BATCH + pid_b) * L) * NSTATE
        _store_tile(dB_ptr, part, t, L, n, NSTATE, tl.sum(lam_chunk * (dt * u)[:, :, None], 1))
        _store_tile(dC_ptr, part, t, L, n, NSTATE, tl.sum(h * dy[:, :, None], axis=1))
    _store_tile(dA_ptr, pid_b * DIM * NSTATE, d, DIM, n, NSTATE, dA)
    tl.store(dD_ptr + pid_b * DIM + d, dD, mask=d_ok)
    tl.store(dbias_ptr + pid_b * DIM + d, dbias, mask=d_ok)


def forward(u, delta, A, B, C, D, z, delta_bias, softplus, save_states, cfg):
    """Launch the step-by-step forward kernel; same contract as ``triton_kernel._scan_forward``."""
    batch, length, dim = u.shape
    nstate = A.shape[1]
    block_n = _pow2(nstate)
    block_d = _block_d(cfg.block_d, block_n, budget=4096)
    acc = dict(device=u.device, dtype=_compute_dtype(u))
    y = torch.empty_like(u)
    last = torch.empty(batch, dim, nstate, **acc)
    states = torch.empty(batch, triton.cdiv(length, cfg.chunk), nstate, dim, **acc) \
        if save_states else None
    zeros = torch.zeros(dim, **acc)
    _launch(_selective_scan_fwd_stepwise_kernel, (batch, triton.cdiv(dim, block_d)),
        u, delta, A, B, C, zeros if D is None else D, u if z is None else z,
        zeros if delta_bias is None else delta_bias, y, last, last if states is None else states,
        length, dim, nstate, HAS_D=D is not None, HAS_Z=z is not None,
        HAS_BIAS=delta_bias is not None, SOFTPLUS=bool(softplus), SAVE_STATES=save_states,
        BLOCK_D=block_d, BLOCK_N=block_n, CHUNK=cfg.chunk, ACC=_ACC[acc["dtype"]],
        num_warps=cfg.warps)
    return y, last, states


def backward(saved, softplus, g, dlast, cfg):
    """Launch the first backward kernel; same contract as ``triton_kernel._scan_backward``."""
    u, delta, A, B, C, D, z, delta_bias, states = saved
    batch, length, dim = u.shape
    nstate = A.shape[1]
    block_n = _pow2(nstate)
    block_d = _block_d(cfg.block_d_bwd, cfg.chunk * block_n, budget=4096)
    n_blocks = triton.cdiv(dim, block_d)
    du, ddelta, dz, dA, dB, dC, dD, dbias = _gradient_buffers(u, delta, z, nstate, n_blocks)
    zeros = torch.zeros(dim, device=u.device, dtype=_compute_dtype(u))
    _launch(_selective_scan_bwd_kernel, (batch, n_blocks),
        u, delta, A, B, C, zeros if D is None else D, u if z is None else z,
        zeros if delta_bias is None else delta_bias, g, states, dA if dlast is None else dlast,
        du, ddelta, du if dz is None else dz, dA, dB, dC, dD, dbias, batch, length, dim, nstate,
        HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
        SOFTPLUS=bool(softplus), HAS_DLAST=dlast is not None, BLOCK_D=block_d,
        BLOCK_N=block_n, CHUNK=cfg.chunk, ACC=_ACC[_compute_dtype(u)],
        num_warps=cfg.warps_bwd)
    return du, ddelta, dA, dB, dC, dD, dz, dbias
