"""The scans as their definitions, and the parallel scan that materializes every state.

:func:`linear_scan_ref` and :func:`selective_scan_ref` are loops over time, written to be
read: the semantics every backend of :mod:`sseq.scan` must reproduce. :func:`_blelloch` is
the log-depth associative scan (Blelloch, 1990) behind the ``"parallel"`` backend, which
materializes the ``(b, l, d, n)`` states that a fused kernel avoids. The input checks that
every backend shares live here too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["linear_scan_parallel", "linear_scan_ref", "selective_scan_ref"]

# ----------------------------------------------------------------------------- validation
# The dtypes the scans compute with. float8 is refused: PyTorch has no arithmetic for it.
_REAL = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_COMPLEX = (torch.complex64, torch.complex128)


def _check(name, x, shape, letters, *, complex_ok=False, device=None):
    """x must be a float tensor of ``shape`` (None entries: any size), on ``device``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape {letters}, got "
                        f"{type(x).__name__}")
    allowed = _REAL + _COMPLEX if complex_ok else _REAL
    if x.dtype not in allowed:
        kind = "floating-point or complex" if complex_ok else "real floating-point"
        names = ", ".join(str(t).removeprefix("torch.") for t in allowed)
        raise TypeError(f"{name} must be a {kind} tensor, got dtype {x.dtype} (one of {names})")
    if x.dim() != len(shape) or any(
            s is not None and s != g for s, g in zip(shape, x.shape, strict=True)):
        want = "(" + ", ".join("?" if s is None else str(s) for s in shape) + (
            ",)" if len(shape) == 1 else ")")
        raise ValueError(f"{name} must have shape {letters} = {want}, got {tuple(x.shape)}")
    if device is not None and x.device != device:
        raise ValueError(f"{name} is on {x.device} but the first input is on {device}; "
                         "put all inputs on one device")


def _check_selective(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state):
    _check("u", u, (None, None, None), "(b, l, d)")
    b, l, d = u.shape
    if u.numel() == 0:
        raise ValueError(f"u must be non-empty, got shape {tuple(u.shape)}")
    _check("A", A, (d, None), "(d, n) with d = u.shape[2]", device=u.device)
    n = A.shape[1]
    if n < 1:
        raise ValueError(f"A must have n >= 1 state dimensions, got shape {tuple(A.shape)}")
    optional = {"D": (D, (d,), "(d,)"), "z": (z, (b, l, d), "(b, l, d)"),
                "delta_bias": (delta_bias, (d,), "(d,)")}
    for name, (x, shape, letters) in {"delta": (delta, (b, l, d), "(b, l, d)"),
                                      "B": (B, (b, l, n), "(b, l, n)"),
                                      "C": (C, (b, l, n), "(b, l, n)"), **optional}.items():
        if x is not None or name not in optional:
            _check(name, x, shape, letters, device=u.device)
    for name, flag in (("delta_softplus", delta_softplus), ("return_last_state",
                                                             return_last_state)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool, got {flag!r}")


def _prepare_linear(a, b, h0):
    """Validate; cast to the compute dtype (at least 32-bit). Returns a, b, h0, output dtype."""
    _check("a", a, (None,) * max(2, a.dim() if isinstance(a, torch.Tensor) else 2),
           "(batch, l, ...)", complex_ok=True)
    if a.numel() == 0:
        raise ValueError(f"a must be non-empty, got shape {tuple(a.shape)}")
    _check("b", b, tuple(a.shape), "a.shape", complex_ok=True, device=a.device)
    out_dtype = torch.promote_types(a.dtype, b.dtype)
    if h0 is not None:
        _check("h0", h0, (a.shape[0], *a.shape[2:]), "(batch, ...) = (a.shape[0], a.shape[2:])",
               complex_ok=True, device=a.device)
        out_dtype = torch.promote_types(out_dtype, h0.dtype)
    dtype = torch.promote_types(out_dtype, torch.float32)
    return a.to(dtype), b.to(dtype), None if h0 is None else h0.to(dtype), out_dtype


# ----------------------------------------------------------------------------- linear scan
def linear_scan_ref(a, b, h0=None):
    """The definition: h_t = a_t ⊙ h_{t−1} + b_t for t = 0 … l−1, with h_{−1} = h0.

    Args:
        a, b: ``(batch, l, ...)``, real or complex, any trailing shape.
        h0: ``(batch, ...)``, or None for zeros.

    Returns:
        h: ``(batch, l, ...)``, every state; computed in at least float32, returned in the
        inputs' promoted dtype.
    """
    a, b, h0, out_dtype = _prepare_linear(a, b, h0)
    h = torch.zeros_like(b[:, 0]) if h0 is None else h0  # (batch, ...)
    hs = []
    for a_t, b_t in zip(a.unbind(1), b.unbind(1), strict=True):
        h = a_t * h + b_t
        hs.append(h)
    return torch.stack(hs, 1).to(out_dtype)


def _blelloch(a, b):
    """All states h_t = a_t ⊙ h_{t−1} + b_t (h_{−1} = 0), by Blelloch's recursive scan.

    A step is a pair (a, b); the step (a', b') followed by (a, b) is the single step
    (a a', a b' + b), an associative combination. Combine neighbours into l/2 double steps
    (a_{2i+1} a_{2i}, a_{2i+1} b_{2i} + b_{2i+1}); scan those recursively, which gives the odd
    states; fill in each even state with one more step. Work O(l), depth 2 log2(l). An odd
    length is padded with the identity step (1, 0), which leaves the state unchanged.

    Args:
        a, b: ``(batch, l, ...)``.

    Returns:
        h: ``(batch, l, ...)``.
    """
    l = a.shape[1]
    if l == 1:  # h_0 = a_0 h_{−1} + b_0 with h_{−1} = 0, written out: a stays in the graph
        return a * torch.zeros_like(b) + b
    if l % 2:
        a = torch.cat([a, torch.ones_like(a[:, :1])], 1)
        b = torch.cat([b, torch.zeros_like(b[:, :1])], 1)
    a_even, a_odd, b_even, b_odd = a[:, 0::2], a[:, 1::2], b[:, 0::2], b[:, 1::2]
    h_odd = _blelloch(a_odd * a_even, a_odd * b_even + b_odd)  # h_1, h_3, ...
    h_even = torch.cat([b_even[:, :1], a_even[:, 1:] * h_odd[:, :-1] + b_even[:, 1:]], 1)
    return torch.stack([h_even, h_odd], 2).flatten(1, 2)[:, :l]  # interleave: h_0, h_1, ...


def linear_scan_parallel(a, b, h0=None):
    """h_t = a_t ⊙ h_{t−1} + b_t by a log-depth associative scan; see :func:`linear_scan_ref`.

    h0 is folded into the first step: b_0 ← a_0 h0 + b_0.
    """
    a, b, h0, out_dtype = _prepare_linear(a, b, h0)
    if h0 is not None:
        b = torch.cat([a[:, :1] * h0[:, None] + b[:, :1], b[:, 1:]], 1)
    return _blelloch(a, b).to(out_dtype)


# ----------------------------------------------------------------------------- selective scan
def selective_scan_ref(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                       return_last_state=False):
    """The selective scan of Mamba, as a loop over time: the definition.

    Δ = softplus(delta + delta_bias) (each step optional), then for each channel j

        h_t = exp(Δ_t A) ⊙ h_{t−1} + Δ_t B_t u_t     (h_{−1} = 0; state (d, n))
        y_t = ⟨C_t, h_t⟩ + D u_t,   then y_t · SiLU(z_t) when z is given.

    A is discretized by zero-order hold, B by Euler (Δ B instead of A⁻¹(exp(ΔA) − I) B), as
    the Mamba code does. Semantics of ``selective_scan_ref`` in ``mamba_ssm``, but batch-first:
    Mamba's u, delta, z are ``(b, d, l)`` and its B, C ``(b, n, l)``.

    Args:
        u, delta: ``(b, l, d)``.  A: ``(d, n)``, real.  B, C: ``(b, l, n)``.
        D, delta_bias: ``(d,)`` or None.  z: ``(b, l, d)`` or None.
        delta_softplus: apply softplus to Δ.  return_last_state: also return h_{l−1}.

    Returns:
        y ``(b, l, d)`` in u's dtype (computed in float32, float64 for float64 inputs), and
        when asked the last state ``(b, d, n)`` in the compute dtype.
    """
    _check_selective(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
    dtype = torch.promote_types(u.dtype, torch.float32)
    u_, A_bar, Bu = _discretize(u, delta, A, B, delta_bias, delta_softplus, dtype)
    C = C.to(dtype)
    h = u_.new_zeros(u.shape[0], A.shape[0], A.shape[1])  # (b, d, n)
    ys = []
    for A_bar_t, Bu_t, C_t in zip(A_bar.unbind(1), Bu.unbind(1), C.unbind(1), strict=True):
        h = A_bar_t * h + Bu_t
        ys.append(torch.einsum("bdn,bn->bd", h, C_t))
    y = torch.stack(ys, 1)  # (b, l, d)
    if D is not None:
        y = y + u_ * D.to(dtype)
    if z is not None:
        y = y * F.silu(z.to(dtype))
    return (y.to(u.dtype), h) if return_last_state else y.to(u.dtype)


def _discretize(u, delta, A, B, delta_bias, delta_softplus, dtype):
    """Δ = softplus(delta + delta_bias); Ā = exp(Δ A) (ZOH); B̄u = Δ B u (Euler, as Mamba).

    Returns u, Ā and B̄u in ``dtype``: ``(b, l, d)``, ``(b, l, d, n)``, ``(b, l, d, n)``.
    """
    u, dt, A, B = (x.to(dtype) for x in (u, delta, A, B))
    if delta_bias is not None:
        dt = dt + delta_bias.to(dtype)
    if delta_softplus:
        dt = F.softplus(dt)
    A_bar = torch.exp(dt[..., None] * A)  # (b, l, d, n)
    Bu = (dt * u)[..., None] * B[:, :, None, :]  # (b, l, d, n)
    return u, A_bar, Bu


def _selective_scan_parallel(u, delta, A, B, C, D, z, delta_bias, delta_softplus,
                             return_last_state):
    """The "parallel" backend: :func:`selective_scan_ref` with the loop replaced by
    :func:`_blelloch`, which materializes every state (b, l, d, n)."""
    dtype = torch.promote_types(u.dtype, torch.float32)
    u_, A_bar, Bu = _discretize(u, delta, A, B, delta_bias, delta_softplus, dtype)
    C = C.to(dtype)
    h = _blelloch(A_bar, Bu)  # (b, l, d, n)
    y = torch.einsum("bldn,bln->bld", h, C)
    if D is not None:
        y = y + u_ * D.to(dtype)
    if z is not None:
        y = y * F.silu(z.to(dtype))
    return (y.to(u.dtype), h[:, -1]) if return_last_state else y.to(u.dtype)
