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
* **What is recomputed.** The backward pass walks the chunks from last to first, and, for
  each state index ``n`` in turn, recomputes the chunk's ``CHUNK`` states from the saved
  one with the same scan, then runs the adjoint recurrence — which runs backwards in time —
  as a second scan over the chunk loaded with its time index flipped.

The first versions of these kernels, in :mod:`sseq.scan.triton_kernel_v1`, walked time one step
after the other (forward) and recomputed a chunk for all ``n`` at once in ``(T, BLOCK_D, N)``
tiles (backward). Measured on an H100 (``book/kernel_performance.md``) they were about 13
and 12 times faster than the PyTorch parallel scan, yet the forward moved only about a tenth
of the bytes per second that a plain copy does: each step's loads waited on the step before,
and each step summed ``C_t h_t`` across threads (the likely causes; no profile was taken).
The kernels below issue a whole chunk's
loads at once (the forward also the next chunk's, before computing this one), and keep
every scan inside one thread.

Without a CUDA device the same kernels run in Triton's interpreter on CPU tensors (slow,
but exact enough to test every line); :mod:`sseq.scan.triton_common` switches it on, and
holds the small pieces of arithmetic, the launch configuration and the launch helpers that
all the scan kernels share.
"""

from __future__ import annotations

import torch

from sseq.scan import triton_kernel_v1
from sseq.scan.triton_common import (  # noqa: F401  (GPU_CONFIG, V1_CONFIG, use_config: API)
    GPU_CONFIG,
    INTERPRETED,
    LOG2E,
    V1_CONFIG,
    KernelConfig,
    _check_device,
    _compose,
    _compute_dtype,
    _config,
    _decay,
    _delta_and_u_grads,
    _first_order_only,
    _flags,
    _gradient_buffers,
    _launch,
    _step_dt,
    tl,
    triton,
    use_config,
)

__all__ = [
    "GPU_CONFIG",
    "INTERPRETED",
    "V1_CONFIG",
    "KernelConfig",
    "selective_scan_triton",
    "use_config",
]

# --------------------------------------------------------------------------------------------
# Forward: one program = (batch element, BLOCK_D channels); time is walked in chunks of T steps.
#
# Inside a chunk the recurrence h_t = a_t h_{t-1} + x_t (a_t = exp(Δ_t A), x_t = Δ_t B_t u_t)
# is solved for all T steps at once by a scan down the time axis of (T, BLOCK_D) tiles, one
# state index n at a time. The scan starts from the state entering the chunk: its first step
# is h_0 = a_0 h_in + x_0. A chunk's loads are issued together, and the next chunk's before
# this one is computed, instead of every time step waiting for its own.
#
# Each thread owns one channel and all T steps of it (when BLOCK_D = 32 × warps, the
# default), so the scan runs inside the thread, with no communication. The compiler would
# rather give a thread 4 neighbouring channels (one 16-byte load) and split the time steps
# across threads, which turns the scan into shuffles between threads: ``tl.max_contiguous(d,
# 1)`` tells it not to count on neighbouring channels being contiguous, and it then lays one
# channel per thread. A warp's 32 threads still read 32 neighbouring channels at each time
# step: 128 contiguous bytes, as fast a load as the 16-byte kind.
# --------------------------------------------------------------------------------------------


@triton.jit
def _selective_scan_fwd_kernel(
    u_ptr, delta_ptr, A_ptr, Bt_ptr, Ct_ptr, D_ptr, z_ptr, bias_ptr,  # inputs; B, C as (b, n, l)
    y_ptr, last_ptr, states_ptr,  # outputs: (b, l, d), (b, d, n), (b, l / SAVE_EVERY, n, d)
    L, DIM, NSTATE: tl.constexpr,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    SAVE_STATES: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, T: tl.constexpr,
    SAVE_EVERY: tl.constexpr, UNROLL_N: tl.constexpr, ACC: tl.constexpr,
):
    pid_b = tl.program_id(0).to(tl.int64)  # int64: offsets such as b · L · DIM pass 2^31
    d = tl.max_contiguous(tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D), 1)  # my channels
    d_ok = d < DIM
    steps = tl.arange(0, T)  # (T,) position inside a chunk
    ns = tl.arange(0, BLOCK_N)  # (N,)
    bias = tl.load(bias_ptr + d, mask=d_ok, other=0.0).to(ACC)
    D_skip = tl.load(D_ptr + d, mask=d_ok, other=0.0).to(ACC)
    # The state entering the current chunk, (N, BLOCK_D): registers only. Row n is read and
    # replaced by masking, since a register tile cannot be indexed by a loop variable.
    H = tl.zeros((BLOCK_N, BLOCK_D), dtype=ACC)
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
        u = u_next.to(ACC)
        delta = delta_next.to(ACC)
        # Prefetch: the next chunk's loads go out now and arrive while this chunk computes.
        mask_next = (t[:, None] + T < L) & d_ok[None, :]
        u_next = tl.load(u_ptr + io + T * DIM, mask=mask_next, other=0.0)
        delta_next = tl.load(delta_ptr + io + T * DIM, mask=mask_next, other=0.0)
        if HAS_Z:  # needed only at the end of the chunk
            z = tl.load(z_ptr + io, mask=mask, other=0.0).to(ACC)
        dt = _step_dt(delta, bias[None, :], in_seq[:, None], HAS_BIAS, SOFTPLUS)  # (T, BLOCK_D)
        dt_u = dt * u
        y = tl.zeros((T, BLOCK_D), dtype=ACC)  # Σ_n C_t h_t, built one n at a time
        # Unrolled (N small), n is a constant in each copy and the masks below cost nothing.
        for n in tl.range(0, NSTATE, loop_unroll_factor=UNROLL_N):
            A_n = tl.load(A_ptr + d * NSTATE + n, mask=d_ok, other=0.0).to(ACC)
            bn = (pid_b * NSTATE + n) * L + t  # (T,): B and C arrive transposed, (b, n, l), so
            B_n = tl.load(Bt_ptr + bn, mask=in_seq, other=0.0).to(ACC)  # B_n is T
            C_n = tl.load(Ct_ptr + bn, mask=in_seq, other=0.0).to(ACC)  # numbers in a row
            a = _decay(dt, (A_n * LOG2E)[None, :], in_seq[:, None])  # A_bar, (T, BLOCK_D)
            x = dt_u * B_n[:, None]  # B_bar u = Δ B u
            h_in = tl.sum(tl.where(ns[:, None] == n, H, 0.0), axis=0)  # H[n], in Triton
            x = tl.where(steps[:, None] == 0, a * h_in[None, :] + x, x)
            # A cumulative "sum" down the time axis with _compose in place of +: its second
            # output is every state h_t of the chunk, for this n.
            _, h = tl.associative_scan((a, x), 0, _compose)
            y += h * C_n[:, None]
            # Row T − 1 is the state after the chunk, in a partial last chunk too (Δ = 0 past
            # the end keeps the state as it is).
            h_out = tl.sum(tl.where(steps[:, None] == T - 1, h, 0.0), axis=0)
            H = tl.where(ns[:, None] == n, h_out[None, :], H)  # H[n] = h_out
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


# --------------------------------------------------------------------------------------------
# Backward: walk the chunks from last to first, one state index n at a time; for each,
# recompute the chunk's states, then run the adjoint recurrence backwards through it.
# Derivatives, with λ_t = ∂loss/∂h_t:
#
#   dy_t = g_t · SiLU(z_t)                         (g = ∂loss/∂out)
#   λ_t  = C_t dy_t + A_bar_{t+1} λ_{t+1}           (runs backwards in time)
#   ∂Δ_t = Σ_n λ_t (B_t u_t + A · A_bar_t h_{t-1}),  ∂A = Σ_t λ_t A_bar_t h_{t-1} Δ_t
#   ∂u_t = D dy_t + Δ_t Σ_n λ_t B_t,   ∂B_t = Σ_d λ_t Δ_t u_t,   ∂C_t = Σ_d dy_t h_t
#
# A_bar_t h_{t-1} = h_t − Δ_t B_t u_t needs no shifted copy of h (and no division by A_bar).
# λ runs backwards in time: the chunk is loaded a second time with its time index flipped, so
# that λ is an ordinary forward scan, and the recomputed states are flipped to meet it
# (``tl.flip``, inside each thread). Names ending in ``_t`` are in time order (to recompute
# h); all others are flipped: row 0 is the chunk's latest step.
# --------------------------------------------------------------------------------------------


@triton.jit
def _selective_scan_bwd_kernel(
    u_ptr, delta_ptr, A_ptr, Bt_ptr, Ct_ptr, D_ptr, z_ptr, bias_ptr, g_ptr, states_ptr,
    dlast_ptr, du_ptr, ddelta_ptr, dz_ptr, dA_ptr, dB_ptr, dC_ptr, dD_ptr, dbias_ptr,
    BATCH, L, DIM, NSTATE: tl.constexpr,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    HAS_DLAST: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, T: tl.constexpr,
    UNROLL_N: tl.constexpr, ACC: tl.constexpr,
):
    pid_b = tl.program_id(0).to(tl.int64)
    pid_d = tl.program_id(1)
    d = tl.max_contiguous(pid_d * BLOCK_D + tl.arange(0, BLOCK_D), 1)  # one channel a thread
    d_ok = d < DIM
    steps = tl.arange(0, T)
    ns = tl.arange(0, BLOCK_N)
    bias = tl.load(bias_ptr + d, mask=d_ok, other=0.0).to(ACC)
    D_skip = tl.load(D_ptr + d, mask=d_ok, other=0.0).to(ACC)
    state_mask = (ns[:, None] < NSTATE) & d_ok[None, :]
    by_dn = pid_b * DIM * NSTATE + d[None, :] * NSTATE + ns[:, None]  # (N, BLOCK_D) in (b, d, n)
    LAM = tl.zeros((BLOCK_N, BLOCK_D), dtype=ACC)  # λ just after the chunk, row n
    if HAS_DLAST:  # the loss may also depend on the last state
        LAM += tl.load(dlast_ptr + by_dn, mask=state_mask, other=0.0)
    dA = tl.zeros((BLOCK_N, BLOCK_D), dtype=ACC)  # sums over this program's time steps
    dD = tl.zeros((BLOCK_D,), dtype=ACC)
    dbias = tl.zeros((BLOCK_D,), dtype=ACC)
    n_chunks = tl.cdiv(L, T)
    for k in range(tl.cdiv(L, T)):  # a loop bound is written out, not named: see _launch
        c = n_chunks - 1 - k  # chunks in reverse order
        # Each chunk is read twice: in time order, to recompute its states, and flipped
        # (latest step first), for the adjoint λ and everything that meets it.
        tt = c * T + steps
        tf = c * T + (T - 1 - steps)
        m_t = (tt < L)[:, None] & d_ok[None, :]
        m_f = (tf < L)[:, None] & d_ok[None, :]
        io_t = (pid_b * L + tt[:, None]) * DIM + d[None, :]
        io_f = (pid_b * L + tf[:, None]) * DIM + d[None, :]
        delta_t = tl.load(delta_ptr + io_t, mask=m_t, other=0.0).to(ACC)
        dt_t = _step_dt(delta_t, bias[None, :], (tt < L)[:, None], HAS_BIAS, SOFTPLUS)
        dt_u_t = dt_t * tl.load(u_ptr + io_t, mask=m_t, other=0.0).to(ACC)
        u = tl.load(u_ptr + io_f, mask=m_f, other=0.0).to(ACC)
        delta = tl.load(delta_ptr + io_f, mask=m_f, other=0.0).to(ACC)
        dt = _step_dt(delta, bias[None, :], (tf < L)[:, None], HAS_BIAS, SOFTPLUS)
        m_next = (tf + 1 < L)[:, None] & d_ok[None, :]  # Δ_{t+1}; 0 past the end (A_bar = 1)
        delta_next = tl.load(delta_ptr + io_f + DIM, mask=m_next, other=0.0).to(ACC)
        dt_next = _step_dt(delta_next, bias[None, :], (tf + 1 < L)[:, None], HAS_BIAS, SOFTPLUS)
        g = tl.load(g_ptr + io_f, mask=m_f, other=0.0).to(ACC)
        dy = g
        if HAS_Z:
            z = tl.load(z_ptr + io_f, mask=m_f, other=0.0).to(ACC)
            dy = g * z * tl.sigmoid(z)
        ddt = tl.zeros((T, BLOCK_D), dtype=ACC)  # Σ_n over each, flipped like the rest
        lam_B = tl.zeros((T, BLOCK_D), dtype=ACC)
        y = tl.zeros((T, BLOCK_D), dtype=ACC)
        saved = (pid_b * tl.cdiv(L, T) + c) * NSTATE * DIM  # the states entering chunk c
        for n in tl.range(0, NSTATE, loop_unroll_factor=UNROLL_N):
            A_n = tl.load(A_ptr + d * NSTATE + n, mask=d_ok, other=0.0).to(ACC)
            bn = (pid_b * NSTATE + n) * L
            B_t = tl.load(Bt_ptr + bn + tt, mask=tt < L, other=0.0).to(ACC)
            B_f = tl.load(Bt_ptr + bn + tf, mask=tf < L, other=0.0).to(ACC)
            C_f = tl.load(Ct_ptr + bn + tf, mask=tf < L, other=0.0).to(ACC)
            # The chunk's states for this n, from the saved one, in time order; then flipped.
            a_t = _decay(dt_t, (A_n * LOG2E)[None, :], (tt < L)[:, None])
            x_t = dt_u_t * B_t[:, None]
            h_in = tl.load(states_ptr + saved + n * DIM + d, mask=d_ok, other=0.0)
            x_t = tl.where(steps[:, None] == 0, a_t * h_in[None, :] + x_t, x_t)
            _, h = tl.associative_scan((a_t, x_t), 0, _compose)
            h = tl.flip(h, 0)
            # λ_t = C_t dy_t + A_bar_{t+1} λ_{t+1}: an ordinary scan over the flipped chunk,
            # started from λ after the chunk.
            a_next = _decay(dt_next, (A_n * LOG2E)[None, :], (tf + 1 < L)[:, None])
            lam_after = tl.sum(tl.where(ns[:, None] == n, LAM, 0.0), axis=0)
            q = dy * C_f[:, None]
            q = tl.where(steps[:, None] == 0, a_next * lam_after[None, :] + q, q)
            _, lam = tl.associative_scan((a_next, q), 0, _compose)
            lam_start = tl.sum(tl.where(steps[:, None] == T - 1, lam, 0.0), axis=0)
            LAM = tl.where(ns[:, None] == n, lam_start[None, :], LAM)
            # What λ and h give: A_bar_t h_{t-1} = h_t − Δ_t B_t u_t (no shifted copy of h).
            Ah_prev = h - (dt * u) * B_f[:, None]
            lam_B += lam * B_f[:, None]
            ddt += lam * A_n[None, :] * Ah_prev
            dA += tl.where(ns[:, None] == n, tl.sum(lam * Ah_prev * dt, axis=0)[None, :], 0.0)
            if HAS_Z:
                y += h * C_f[:, None]
            # ∂B, ∂C sum over channels: this program writes its partial sum (_scan_backward).
            part = ((pid_d * BATCH + pid_b) * L + tf) * NSTATE + n  # (T,)
            tl.store(dB_ptr + part, tl.sum(lam * (dt * u), axis=1), mask=tf < L)
            tl.store(dC_ptr + part, tl.sum(h * dy, axis=1), mask=tf < L)
        if HAS_Z:  # the gate's gradient needs y, recomputed from h above
            if HAS_D:
                y += D_skip[None, :] * u
            sig = tl.sigmoid(z)
            dz = g * y * sig * (1.0 + z * (1.0 - sig))  # SiLU'(z) = σ(z)(1 + z(1 − σ(z)))
            tl.store(dz_ptr + io_f, dz.to(dz_ptr.dtype.element_ty), mask=m_f)
        dD += tl.sum(dy * u, axis=0)
        ddt = tl.where(m_f, ddt + lam_B * u, 0.0)
        ddt, du = _delta_and_u_grads(ddt, dt, lam_B, dy, delta, bias, D_skip, HAS_D, SOFTPLUS)
        dbias += tl.sum(ddt, axis=0)
        tl.store(du_ptr + io_f, du.to(du_ptr.dtype.element_ty), mask=m_f)
        tl.store(ddelta_ptr + io_f, ddt.to(ddelta_ptr.dtype.element_ty), mask=m_f)
    tl.store(dA_ptr + by_dn, dA, mask=state_mask)
    tl.store(dD_ptr + pid_b * DIM + d, dD, mask=d_ok)
    tl.store(dbias_ptr + pid_b * DIM + d, dbias, mask=d_ok)



def _scan_forward(u, delta, A, B, C, D, z, delta_bias, softplus, save_states, cfg):
    """Launch the forward kernel. Returns y (b, l, d), the last state (b, d, n), and the states
    entering every ``cfg.chunk``-th step, (b, chunks, n, d) (None unless ``save_states``), the
    last two in the compute dtype (:func:`compute_dtype`)."""
    if cfg.version == 1:
        return triton_kernel_v1.forward(u, delta, A, B, C, D, z, delta_bias, softplus,
                                      save_states, cfg)
    if cfg.version != 2:
        raise ValueError(f"KernelConfig.version must be 1 or 2, got {cfg.version!r}")
    batch, length, dim = u.shape
    nstate = A.shape[1]
    acc = dict(device=u.device, dtype=_compute_dtype(u))
    y = torch.empty_like(u)
    last = torch.empty(batch, dim, nstate, **acc)
    states = torch.empty(batch, triton.cdiv(length, cfg.chunk), nstate, dim, **acc) \
        if save_states else None
    zeros = torch.zeros(dim, **acc)  # stands in for an absent D or delta_bias
    _launch(_selective_scan_fwd_kernel, (batch, triton.cdiv(dim, cfg.block_d)),
        u, delta, A, B.transpose(1, 2).contiguous(), C.transpose(1, 2).contiguous(),
        zeros if D is None else D, u if z is None else z,
        zeros if delta_bias is None else delta_bias, y, last, last if states is None else states,
        length, dim, nstate, **_flags(u, D, z, delta_bias, softplus, nstate),
        SAVE_STATES=save_states, BLOCK_D=cfg.block_d, T=cfg.chunk_fwd, SAVE_EVERY=cfg.chunk,
        UNROLL_N=nstate if nstate <= cfg.unroll_n else 1, num_warps=cfg.warps)
    return y, last, states


def _scan_backward(saved, softplus, g, dlast, cfg):
    """Launch the backward kernel; returns the gradients of (u, delta, A, B, C, D, z, bias).

    ∂B and ∂C are sums over channels, which belong to different programs. Each program writes
    its partial sum to its own slice of a (blocks, b, l, n) buffer and PyTorch adds the slices:
    deterministic (the same bits on every run, unlike atomic adds) at the price of two extra
    buffers of (d / BLOCK_D) · b · l · n numbers. ∂A, ∂D, ∂bias are summed over batch likewise.
    """
    u, delta, A, B, C, D, z, delta_bias, states = saved
    if cfg.version == 1:
        du, ddelta, dA, dB, dC, dD, dz, dbias = triton_kernel_v1.backward(saved, softplus, g,
                                                                        dlast, cfg)
    else:
        batch, length, dim = u.shape
        nstate = A.shape[1]
        n_blocks = triton.cdiv(dim, cfg.block_d)
        du, ddelta, dz, dA, dB, dC, dD, dbias = _gradient_buffers(u, delta, z, nstate, n_blocks)
        zeros = torch.zeros(dim, device=u.device, dtype=_compute_dtype(u))
        _launch(_selective_scan_bwd_kernel, (batch, n_blocks),
            u, delta, A, B.transpose(1, 2).contiguous(), C.transpose(1, 2).contiguous(),
            zeros if D is None else D, u if z is None else z,
            zeros if delta_bias is None else delta_bias, g, states,
            dA if dlast is None else dlast, du, ddelta, du if dz is None else dz, dA, dB, dC,
            dD, dbias, batch, length, dim, nstate,
            **_flags(u, D, z, delta_bias, softplus, nstate),
            HAS_DLAST=dlast is not None, BLOCK_D=cfg.block_d, T=cfg.chunk,
            UNROLL_N=nstate if nstate <= cfg.unroll_n_bwd else 1, num_warps=cfg.warps)
    return (du, ddelta, dA.sum(0).to(A.dtype), dB.sum(0).to(B.dtype), dC.sum(0).to(C.dtype),
            None if D is None else dD.sum(0).to(D.dtype), dz,
            None if delta_bias is None else dbias.sum(0).to(delta_bias.dtype))


class _SelectiveScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, softplus, save):
        ctx.cfg, ctx.softplus = _config(), softplus  # the backward must use the same chunks
        y, last, states = _scan_forward(u, delta, A, B, C, D, z, delta_bias, softplus, save,
                                        ctx.cfg)
        if save:
            ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, states)
        ctx.set_materialize_grads(False)
        return y, last

    @staticmethod
    def backward(ctx, g, dlast):
        _first_order_only("triton")
        u = ctx.saved_tensors[0]
        g = torch.zeros_like(u) if g is None else g.contiguous()
        dlast = None if dlast is None else dlast.to(_compute_dtype(u)).contiguous()
        return (*_scan_backward(ctx.saved_tensors, ctx.softplus, g, dlast, ctx.cfg), None,
                None)


def selective_scan_triton(u, delta, A, B, C, D=None, z=None, delta_bias=None,
                          delta_softplus=False, return_last_state=False):
    """The selective scan of Mamba, fused in one Triton kernel (forward and backward).

    Same semantics as ``selective_scan_ref`` (batch-first); inputs are validated by
    :func:`sseq.scan.selective_scan`. Computes in float32 whatever the input dtype (half
    inputs are read as they are), and in float64 for float64 ``u``.

    Args:
        u, delta: (b, l, d) input and raw step size.
        A: (d, n) diagonal state matrices (negative real parts for a stable scan).
        B, C: (b, l, n) input and output matrices, shared by all channels.
        D: (d,) skip, or None. z: (b, l, d) gate, or None. delta_bias: (d,) or None.
        delta_softplus: apply softplus to delta + delta_bias.
        return_last_state: also return the final state.

    Returns:
        y (b, l, d) in u's dtype, and the last state (b, d, n) if asked for, in float32 (float64
        for float64 ``u``). Gradients flow to every tensor argument, through the last state too.
    """
    _check_device(u, delta, A, B, C, D, z, delta_bias)
    args = [None if x is None else x.contiguous() for x in (u, delta, A, B, C, D, z, delta_bias)]
    # States are saved for a backward pass only if there can be one: not under no_grad or
    # inference_mode (where autograd still reports which inputs require a gradient).
    save = torch.is_grad_enabled() and any(x is not None and x.requires_grad for x in args)
    y, last = _SelectiveScan.apply(*args, bool(delta_softplus), save)
    return (y, last) if return_last_state else y
