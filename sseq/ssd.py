"""State space duality (Mamba-2; Dao & Gu, 2024): one map, computed three ways.

With a *scalar* decay per head, the selective SSM of Mamba-2 is, for each head,

    h_t = exp(a_t) h_{t−1} + x_t B_tᵀ        state h: (p, n), x_t: (p,), B_t, C_t: (n,)
    y_t = h_t C_t                             (p,)

where a_t = Δ_t A ≤ 0 is the log-decay of step t. Unrolled, y_t = Σ_{s≤t} L_ts (C_t·B_s) x_s with
L_ts = exp(a_{s+1} + … + a_t): the whole map is y = (L ∘ C Bᵀ) x, a masked "attention" matrix
(the *quadratic* form), while the recurrence is the *linear* form. The SSD algorithm splits the
sequence into chunks of Q steps, uses the quadratic form inside each chunk (matrix products,
which hardware likes) and the recurrence between chunks, on one state per chunk:

* :func:`ssd_sequential` — the recurrence, a loop over time: O(l·p·n) work, l steps in a row;
* :func:`ssd_quadratic` — the attention-like form: O(l²·(n + p)) work, all in parallel;
* :func:`ssd` — chunked: O(l·Q·(n + p) + l·p·n) work, l / Q sequential steps.

Layout of Mamba-2 (``mamba_ssm``'s ``ssd_minimal``): x ``(b, l, h, p)``, a ``(b, l, h)``,
B and C ``(b, l, h, n)``, states ``(b, h, p, n)``. Unlike the minimal version, any length l
works (the last chunk is padded with steps that change nothing) and an initial state may be
given.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sseq import scan
from sseq.bench import time_fn

__all__ = ["segsum", "ssd", "ssd_quadratic", "ssd_sequential", "time_forms"]


def _check(x, a, B, C, initial_state):
    for name, value in (("x", x), ("a", a), ("B", B), ("C", C)):
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise TypeError(f"{name} must be a floating-point torch.Tensor, got "
                            f"{getattr(value, 'dtype', type(value).__name__)}")
    if x.ndim != 4 or x.shape[1] == 0:
        raise ValueError(f"x must have shape (b, l, h, p) with l >= 1, got {tuple(x.shape)}")
    b, l, h, p = x.shape
    if tuple(a.shape) != (b, l, h):
        raise ValueError(f"a must have shape (b, l, h) = {(b, l, h)}, got {tuple(a.shape)}")
    for name, value in (("B", B), ("C", C)):
        if value.ndim != 4 or tuple(value.shape[:3]) != (b, l, h):
            raise ValueError(f"{name} must have shape (b, l, h, n) = {(b, l, h)} + (n,), got "
                             f"{tuple(value.shape)}")
    if B.shape != C.shape:
        raise ValueError(f"B and C must have the same shape, got {tuple(B.shape)} and "
                         f"{tuple(C.shape)}")
    want = (b, h, p, B.shape[-1])
    if initial_state is not None and (not isinstance(initial_state, torch.Tensor) or
                                      tuple(initial_state.shape) != want):
        raise ValueError(f"initial_state must be None or a tensor of shape (b, h, p, n) = "
                         f"{want}, got {tuple(getattr(initial_state, 'shape', ()))}")


def _zero_state(x, B, initial_state):
    """The initial state in x's dtype: the given one, or zeros (b, h, p, n)."""
    if initial_state is not None:
        return initial_state.to(x.dtype)
    return x.new_zeros(x.shape[0], x.shape[-2], x.shape[-1], B.shape[-1])


def ssd_sequential(x, a, B, C, initial_state=None):
    """The recurrence, one step at a time: the definition.

    Args:
        x: ``(b, l, h, p)``.  a: ``(b, l, h)``, the log-decays Δ·A.  B, C: ``(b, l, h, n)``.
        initial_state: ``(b, h, p, n)`` or None for zeros.

    Returns:
        ``(y, final_state)``: ``(b, l, h, p)`` and ``(b, h, p, n)``.
    """
    _check(x, a, B, C, initial_state)
    state = _zero_state(x, B, initial_state)  # (b, h, p, n)
    ys = []
    for t in range(x.shape[1]):
        decay = torch.exp(a[:, t])[..., None, None]  # (b, h, 1, 1)
        state = decay * state + x[:, t, :, :, None] * B[:, t, :, None, :]  # (b, h, p, n)
        ys.append(torch.einsum("bhpn,bhn->bhp", state, C[:, t]))
    return torch.stack(ys, dim=1), state


def segsum(a: torch.Tensor) -> torch.Tensor:
    """Segment sums S[..., t, s] = a_{s+1} + … + a_t for s <= t, and −inf for s > t.

    exp(S) is the decay mask L of the quadratic form. Each entry is summed from its own terms
    (not as a difference of two cumulative sums, which would cancel catastrophically when the
    sums grow large).

    Args:
        a: ``(..., l)``.

    Returns:
        ``(..., l, l)``.
    """
    l = a.shape[-1]
    terms = a[..., None, :].expand(*a.shape, l)  # terms[..., s, k] = a_k
    after = torch.ones(l, l, dtype=torch.bool, device=a.device).triu(1)  # k > s
    # a running sum along the last, contiguous axis: Σ_{s < k <= t} a_k at [..., s, t]
    sums = terms.masked_fill(~after, 0).cumsum(dim=-1).transpose(-1, -2)  # [..., t, s]
    causal = torch.ones(l, l, dtype=torch.bool, device=a.device).tril()
    return sums.masked_fill(~causal, -torch.inf)


def _quadratic_part(x, a, B, C):
    """y = (L ∘ C Bᵀ) x over the last time axis; x (..., l, h, p), a (..., l, h)."""
    L = torch.exp(segsum(a.transpose(-1, -2)))  # (..., h, l, l)
    scores = torch.einsum("...thn,...shn->...hts", C, B)  # C_t · B_s
    return torch.einsum("...hts,...shp->...thp", L * scores, x)


def ssd_quadratic(x, a, B, C, initial_state=None):
    """The attention-like form y = (L ∘ C Bᵀ) x, all positions at once: O(l²) work.

    The initial state contributes exp(a_0 + … + a_t) · h0 C_t to y_t.

    Args and Returns: as :func:`ssd_sequential`.
    """
    _check(x, a, B, C, initial_state)
    h0 = _zero_state(x, B, initial_state)
    decay_from_start = torch.exp(torch.cumsum(a, dim=1))  # (b, l, h): exp(a_0 + … + a_t)
    y = _quadratic_part(x, a, B, C) + decay_from_start[..., None] * torch.einsum(
        "bhpn,blhn->blhp", h0, C)
    # the final state: every input carried to the end, plus the initial state decayed
    to_end = torch.exp(segsum(a.transpose(1, 2))[..., -1, :])  # (b, h, l): exp(a_{s+1}+…)
    final = torch.einsum("bhs,bshp,bshn->bhpn", to_end, x, B) \
        + decay_from_start[:, -1, :, None, None] * h0
    return y, final


def ssd(x, a, B, C, chunk_size, initial_state=None, *, backend="auto"):
    """State space duality, chunked: quadratic inside chunks, a recurrence across them.

    1. Inside each chunk of Q steps: the quadratic form, as if the chunk started from zero.
    2. The state each chunk adds by its end: Σ_s exp(a_{s+1} + … + a_end) x_s B_sᵀ.
    3. Across chunks: H_c = exp(a summed over chunk c−1) H_{c−1} + (step 2 of chunk c−1), a
       linear recurrence of l / Q steps (:func:`sseq.scan.linear_scan`, ``backend``).
    4. Each output adds what the state entering its chunk says: exp(a since chunk start) H_c C_t.

    A length that is not a multiple of Q is padded with steps a = 0, x = B = C = 0, which keep
    the state and add nothing; the padding is cut off again.

    Args:
        x, a, B, C, initial_state: as :func:`ssd_sequential`.
        chunk_size: Q, a positive int.
        backend: the scan backend of step 3.

    Returns:
        ``(y, final_state)``: ``(b, l, h, p)`` and ``(b, h, p, n)``.
    """
    _check(x, a, B, C, initial_state)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
    b, l, h, p = x.shape
    Q, pad = chunk_size, -l % chunk_size
    h0 = _zero_state(x, B, initial_state)
    x, B, C = (F.pad(t, (0, 0, 0, 0, 0, pad)) for t in (x, B, C))  # (b, l', h, ·)
    a = F.pad(a, (0, 0, 0, pad))  # (b, l', h)
    c = (l + pad) // Q
    x, B, C = (t.reshape(b, c, Q, h, -1) for t in (x, B, C))  # (b, c, Q, h, ·)
    a = a.reshape(b, c, Q, h)
    y_inside = _quadratic_part(x, a, B, C)  # 1. (b, c, Q, h, p)
    to_end = torch.exp(segsum(a.transpose(-1, -2))[..., -1, :])  # (b, c, h, Q): a_{s+1}+…
    added = torch.einsum("bchs,bcshp,bcshn->bchpn", to_end, x, B)  # 2. (b, c, h, p, n)
    cum = torch.cumsum(a, dim=2)  # (b, c, Q, h): a summed from the chunk's start to t
    chunk_decay = torch.exp(cum[:, :, -1])[..., None, None].expand_as(added)  # (b, c, h, p, n)
    states = scan.linear_scan(chunk_decay, added, h0, backend=backend)  # 3. after each chunk
    entering = torch.cat([h0[:, None], states[:, :-1]], dim=1)  # (b, c, h, p, n)
    y_from_state = torch.exp(cum)[..., None] * torch.einsum("bchpn,bcthn->bcthp", entering, C)
    y = (y_inside + y_from_state).reshape(b, c * Q, h, p)[:, :l]  # 4.
    return y, states[:, -1]


def time_forms(lengths, *, batch=1, heads=4, p=16, n=16, chunk_size=64, repeat=3, seed=0,
               dtype=torch.float32) -> dict:
    """Median seconds of a forward pass of each form at each length (this machine, now).

    Returns:
        ``{"sequential": [...], "quadratic": [...], "chunked": [...]}``, one entry per length.
    """
    g = torch.Generator().manual_seed(seed)
    out = {"sequential": [], "quadratic": [], "chunked": []}
    for l in lengths:
        x = torch.randn(batch, l, heads, p, generator=g, dtype=dtype)
        a = -torch.rand(batch, l, heads, generator=g, dtype=dtype) * 0.1
        B, C = (torch.randn(batch, l, heads, n, generator=g, dtype=dtype) for _ in range(2))
        forms = {"sequential": ssd_sequential, "quadratic": ssd_quadratic,
                 "chunked": lambda *args: ssd(*args, chunk_size)}
        with torch.no_grad():
            for name, form in forms.items():
                args = (x, a, B, C)
                out[name].append(time_fn(lambda form=form, args=args: form(*args),
                                         repeat=repeat).median)
    return out
