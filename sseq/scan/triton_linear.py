"""The plain linear scan h_t = a_t ⊙ h_{t-1} + b_t in Triton: the selective scan's skeleton.

The same plan as :mod:`sseq.scan.triton_kernel`, with one number of state per feature: a program
owns a batch element and ``BLOCK`` features, walks time in chunks of ``T`` steps and solves
each chunk with a scan down its time axis, started from the state entering the chunk. The
output *is* every state, so the backward pass reads ``h`` back instead of recomputing it.

Backward, with λ_t = ∂loss/∂h_t and g_t the gradient arriving at h_t:

    λ_t = g_t + a_{t+1} λ_{t+1}      (backwards in time),
    ∂b_t = λ_t,   ∂a_t = λ_t h_{t-1},   ∂h0 = a_0 λ_0.

It walks the chunks from last to first and loads each with its time index flipped, so the
backwards recurrence becomes an ordinary forward scan.
"""

from __future__ import annotations

import torch

from sseq.scan.triton_common import (
    _ACC,
    _check_device,
    _compose,
    _compute_dtype,
    _config,
    _first_order_only,
    _launch,
    _pow2,
    triton,
)

tl = triton.language

__all__ = ["linear_scan_triton"]


@triton.jit
def _linear_scan_fwd_kernel(a_ptr, b_ptr, h0_ptr, h_ptr, L, F, HAS_H0: tl.constexpr,
                            BLOCK: tl.constexpr, T: tl.constexpr, ACC: tl.constexpr):
    pid_b = tl.program_id(0).to(tl.int64)
    f = tl.max_contiguous(tl.program_id(1) * BLOCK + tl.arange(0, BLOCK), 1)  # my features
    ok = f < F
    steps = tl.arange(0, T)
    h_in = tl.zeros((BLOCK,), dtype=ACC)  # the state entering the chunk
    if HAS_H0:
        h_in += tl.load(h0_ptr + pid_b * F + f, mask=ok, other=0.0).to(ACC)
    for c in range(tl.cdiv(L, T)):
        t = c * T + steps
        io = (pid_b * L + t[:, None]) * F + f[None, :]  # (T, BLOCK)
        mask = (t < L)[:, None] & ok[None, :]
        a = tl.load(a_ptr + io, mask=mask, other=1.0).to(ACC)  # past the end a = 1,
        b = tl.load(b_ptr + io, mask=mask, other=0.0).to(ACC)  # b = 0: h stays put
        b = tl.where(steps[:, None] == 0, a * h_in[None, :] + b, b)  # h_0 = a_0 h_in + b_0
        _, h = tl.associative_scan((a, b), 0, _compose)
        tl.store(h_ptr + io, h.to(h_ptr.dtype.element_ty), mask=mask)
        h_in = tl.sum(tl.where(steps[:, None] == T - 1, h, 0.0), axis=0)


@triton.jit
def _linear_scan_bwd_kernel(a_ptr, h0_ptr, h_ptr, g_ptr, da_ptr, db_ptr, dh0_ptr, L, F,
                            HAS_H0: tl.constexpr, BLOCK: tl.constexpr, T: tl.constexpr,
                            ACC: tl.constexpr):
    pid_b = tl.program_id(0).to(tl.int64)
    f = tl.max_contiguous(tl.program_id(1) * BLOCK + tl.arange(0, BLOCK), 1)
    ok = f < F
    steps = tl.arange(0, T)
    lam_after = tl.zeros((BLOCK,), dtype=ACC)  # λ at the step after the chunk
    h0 = tl.zeros((BLOCK,), dtype=ACC)
    if HAS_H0:
        h0 += tl.load(h0_ptr + pid_b * F + f, mask=ok, other=0.0).to(ACC)
    n_chunks = tl.cdiv(L, T)
    for k in range(tl.cdiv(L, T)):  # the bound written out: see triton_common._launch
        t = (n_chunks - 1 - k) * T + (T - 1 - steps)  # flipped: the chunk's latest step first
        io = (pid_b * L + t[:, None]) * F + f[None, :]  # (T, BLOCK)
        mask = (t < L)[:, None] & ok[None, :]
        g = tl.load(g_ptr + io, mask=mask, other=0.0).to(ACC)
        a_next = tl.load(a_ptr + io + F, mask=(t + 1 < L)[:, None] & ok[None, :],
                         other=0.0).to(ACC)  # a_{t+1}; none past the end
        g = tl.where(steps[:, None] == 0, a_next * lam_after[None, :] + g, g)
        _, lam = tl.associative_scan((a_next, g), 0, _compose)  # λ, latest step first
        h_prev = tl.load(h_ptr + io - F, mask=(t > 0)[:, None] & mask, other=0.0).to(ACC)
        h_prev = tl.where((t == 0)[:, None], h0[None, :], h_prev)  # h_{-1} = h0
        tl.store(db_ptr + io, lam.to(db_ptr.dtype.element_ty), mask=mask)
        tl.store(da_ptr + io, (lam * h_prev).to(da_ptr.dtype.element_ty), mask=mask)
        lam_after = tl.sum(tl.where(steps[:, None] == T - 1, lam, 0.0), axis=0)  # at the start
    if HAS_H0:
        a_0 = tl.load(a_ptr + pid_b * L * F + f, mask=ok, other=0.0).to(ACC)
        tl.store(dh0_ptr + pid_b * F + f, (a_0 * lam_after).to(dh0_ptr.dtype.element_ty),
                 mask=ok)


class _LinearScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, h0, out_dtype):
        batch, length, features = b.shape
        cfg = _config()
        h = torch.empty(b.shape, device=b.device, dtype=out_dtype)
        block = min(cfg.block_linear, _pow2(features))
        grid = (batch, triton.cdiv(features, block))
        _launch(_linear_scan_fwd_kernel, grid, a, b, a if h0 is None else h0, h, length,
                features, HAS_H0=h0 is not None, BLOCK=block, T=cfg.chunk,
                ACC=_ACC[_compute_dtype(h)], num_warps=max(1, block // 32))
        ctx.save_for_backward(a, h0, h)
        ctx.block, ctx.b_dtype, ctx.cfg = block, b.dtype, cfg
        return h

    @staticmethod
    def backward(ctx, g):
        _first_order_only("triton")
        a, h0, h = ctx.saved_tensors
        batch, length, features = h.shape
        da, db = torch.empty_like(a), torch.empty(h.shape, device=h.device, dtype=ctx.b_dtype)
        dh0 = None if h0 is None else torch.empty_like(h0)
        grid = (batch, triton.cdiv(features, ctx.block))
        _launch(_linear_scan_bwd_kernel, grid, a, h0 if h0 is not None else a, h,
                g.contiguous(), da, db, da if dh0 is None else dh0, length, features,
                HAS_H0=h0 is not None, BLOCK=ctx.block, T=ctx.cfg.chunk,
                ACC=_ACC[_compute_dtype(h)], num_warps=max(1, ctx.block // 32))
        return da, db, dh0, None


def linear_scan_triton(a, b, h0=None):
    """h_t = a_t ⊙ h_{t-1} + b_t along dim 1 (h_{-1} = h0, or 0), in Triton.

    Args:
        a, b: (b, l, ...) coefficients and inputs, same shape.
        h0: (b, ...) initial state, or None.

    Returns:
        h: (b, l, ...) every state, in the inputs' promoted dtype (computed in float32, or in
        float64 when that dtype is float64); differentiable in a, b and h0.
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
