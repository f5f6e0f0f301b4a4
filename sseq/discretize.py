"""From continuous to discrete time: zero-order hold, bilinear (Tustin) and forward Euler.

A continuous linear state space model

    x'(t) = A x(t) + B u(t)

is turned into a recurrence over samples taken every Δ (``dt``) seconds,

    x_k = A_bar x_{k-1} + B_bar u_k,

by one of three classical rules. Each function here returns ``(A_bar, B_bar)``:

=============  ==========================  ==================================
rule           A_bar                       B_bar
=============  ==========================  ==================================
``zoh``        exp(ΔA)                     A⁻¹ (exp(ΔA) − I) B
``bilinear``   (I − ΔA/2)⁻¹ (I + ΔA/2)     (I − ΔA/2)⁻¹ Δ B
``euler``      I + ΔA                      Δ B
=============  ==========================  ==================================

These are the standard control-theory definitions (``scipy.signal.cont2discrete``
with ``method="zoh"``, ``"bilinear"`` and ``"euler"``); the tests compare with scipy.

Dense or diagonal A
-------------------
``A`` is either a dense matrix ``(n, n)`` or the diagonal of a diagonal matrix:

* a 1-D ``A`` of shape ``(n,)`` is a diagonal;
* a square 2-D ``A`` of shape ``(n, n)`` is dense;
* any other shape, e.g. ``(d, n)`` — one diagonal SSM per channel, as in S4D —
  is a batch of diagonals.

Pass ``diagonal=True`` to read a square ``(d, n)`` with ``d == n`` as diagonals.
For a diagonal ``A`` every product is elementwise, ``B`` broadcasts against
``A`` (or is ``(n, m)`` for a 1-D ``A``), and ``dt`` may be a tensor that
broadcasts against ``A`` — ``dt`` of shape ``(d, 1)`` gives each channel its own step.
"""

from __future__ import annotations

import torch

__all__ = ["RULES", "bilinear", "euler", "is_diagonal", "zoh"]


# --- checking the arguments -----------------------------------------------------------------


def _as_float_tensor(x, name: str) -> torch.Tensor:
    """``x`` as a floating or complex tensor; integers and booleans are refused."""
    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(x)
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(f"{name} must be a tensor, got {type(x).__name__}") from err
    if not (x.is_floating_point() or x.is_complex()):
        raise TypeError(f"{name} must be a floating-point or complex tensor, got dtype {x.dtype} "
                        f"(write e.g. torch.tensor(..., dtype=torch.float64))")
    return x


def is_diagonal(A: torch.Tensor, diagonal: bool | None = None) -> bool:
    """Whether ``A`` holds diagonals (True) or is one dense ``(n, n)`` matrix (False).

    The rule of this module: 1-D is diagonal, square 2-D is dense, anything else is a
    batch of diagonals; ``diagonal=True``/``False`` overrides the guess.
    """
    if A.ndim == 0:
        raise ValueError(f"A must be (n,), (n, n) or (..., n); got a scalar {A!r}")
    if diagonal is None:
        return not (A.ndim == 2 and A.shape[0] == A.shape[1])
    if not diagonal and (A.ndim != 2 or A.shape[0] != A.shape[1]):
        raise ValueError(f"a dense A must be square (n, n), got shape {tuple(A.shape)}")
    return bool(diagonal)


def _check(A, B, dt, diagonal):
    """Validate ``(A, B, dt)`` and return them as tensors of one dtype, plus the diagonal flag."""
    A, B = _as_float_tensor(A, "A"), _as_float_tensor(B, "B")
    if isinstance(dt, (int, float)) and not isinstance(dt, bool):  # a plain number: A's precision
        dt = torch.tensor(float(dt), dtype=A.real.dtype, device=A.device)
    dt = _as_float_tensor(dt, "dt")
    if not bool((dt.real > 0).all()) or (dt.is_complex() and bool((dt.imag != 0).any())):
        raise ValueError(f"dt must be positive, got {dt.tolist() if dt.numel() < 8 else dt}")
    diag = is_diagonal(A, diagonal)
    n = A.shape[-1]
    if n == 0:
        raise ValueError(f"A must have n >= 1 state dimensions, got shape {tuple(A.shape)}")
    if diag:
        multi_input = A.ndim == 1 and B.ndim == 2
        if (B.shape[0] if multi_input else (B.shape[-1] if B.ndim else 0)) != n:
            raise ValueError(f"B must have the state size n={n} of A (shape {tuple(A.shape)}): "
                             f"(n,), (n, m) or broadcastable (..., n); got shape {tuple(B.shape)}")
        for x, name in ((dt, "dt"),) if multi_input else ((dt, "dt"), (B, "B")):
            try:
                torch.broadcast_shapes(A.shape, x.shape)
            except RuntimeError as err:
                raise ValueError(f"{name} of shape {tuple(x.shape)} does not broadcast against "
                                 f"A of shape {tuple(A.shape)}") from err
        if multi_input and torch.broadcast_shapes(A.shape, dt.shape) != A.shape:
            raise ValueError(f"dt of shape {tuple(dt.shape)} must broadcast to A's shape "
                             f"{tuple(A.shape)} for a multi-input B (n, m) = {tuple(B.shape)}")
    else:
        if B.ndim not in (1, 2) or B.shape[0] != n:
            raise ValueError(f"B must be (n,) or (n, m) with n={n} for A of shape "
                             f"{tuple(A.shape)}; got shape {tuple(B.shape)}")
        if dt.numel() != 1:
            raise ValueError(f"dt must be a scalar for a dense A, got shape {tuple(dt.shape)}")
        dt = dt.reshape(())
    dtype = torch.promote_types(torch.promote_types(A.dtype, B.dtype), dt.dtype)
    return A.to(dtype), B.to(dtype), dt.to(dtype), diag


def _times_B(f: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """diag(f) B for a diagonal: elementwise, or row scaling when B is (n, m) and f is (n,)."""
    return f.unsqueeze(-1) * B if (f.ndim == 1 and B.ndim == 2) else f * B


def _solve(M: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """M⁻¹ B for B of shape (n,) or (n, m), by a linear solve (never forming M⁻¹)."""
    if B.ndim == 1:
        return torch.linalg.solve(M, B.unsqueeze(-1)).squeeze(-1)
    return torch.linalg.solve(M, B)


# --- the three rules ------------------------------------------------------------------------


def zoh(A, B, dt, *, diagonal: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-order hold: the exact solution when u is constant over each step.

    Integrating x' = Ax + Bu over one step with u held at u_k gives

        x_k = exp(ΔA) x_{k-1} + (∫_0^Δ exp(sA) ds) B u_k,

    so A_bar = exp(ΔA) and B_bar = ∫_0^Δ exp(sA) ds B = A⁻¹ (exp(ΔA) − I) B.
    A is never inverted, so a singular A (an integrator, A = 0) works:

    * dense: both come out of one matrix exponential of the block matrix
      Δ·[[A, B], [0, 0]], whose exponential is [[A_bar, B_bar], [0, I]];
    * diagonal: B_bar = expm1(ΔA)/A · B elementwise (``expm1`` keeps full precision
      when ΔA is tiny), with the limit Δ·B where A = 0.

    Args:
        A: ``(n, n)`` dense, or diagonal ``(n,)`` / ``(..., n)``; real or complex.
        B: ``(n,)`` or ``(n, m)``; for a batch of diagonals, broadcastable to ``(..., n)``.
        dt: the step Δ > 0, a float or a tensor broadcasting against a diagonal A.
        diagonal: see the module docstring (None: guess from A's shape).

    Returns:
        ``(A_bar, B_bar)`` with the shapes of A and of B (broadcast for a diagonal A).
    """
    A, B, dt, diag = _check(A, B, dt, diagonal)
    if diag:
        dtA = dt * A
        A_safe = torch.where(A == 0, torch.ones_like(A), A)
        phi = torch.where(A == 0, dt.expand_as(dtA), torch.expm1(dtA) / A_safe)  # (∫ e^{sA} ds)
        return torch.exp(dtA), _times_B(phi, B)
    n = A.shape[0]
    B2 = B.reshape(n, -1)  # (n, m)
    m = B2.shape[1]
    block = torch.zeros(n + m, n + m, dtype=A.dtype, device=A.device)
    block[:n, :n], block[:n, n:] = A, B2
    E = torch.linalg.matrix_exp(dt * block)  # [[A_bar, B_bar], [0, I]]
    return E[:n, :n], E[:n, n:].reshape(B.shape)


def bilinear(A, B, dt, *, diagonal: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Bilinear (Tustin) rule: the trapezoid rule for the integral over one step.

    Averaging the derivative at both ends, x_k − x_{k-1} ≈ Δ/2 A (x_k + x_{k-1}) + Δ B u_k,
    and solving for x_k gives

        A_bar = (I − ΔA/2)⁻¹ (I + ΔA/2),    B_bar = (I − ΔA/2)⁻¹ Δ B.

    It maps the left half-plane onto the unit disk, so a stable A stays stable for every Δ.
    (This is scipy's ``"bilinear"`` and the S4 paper's rule; solves, never inverses.)

    Args and Returns: as :func:`zoh`.
    """
    A, B, dt, diag = _check(A, B, dt, diagonal)
    if diag:
        left = 1 - dt * A / 2
        return (1 + dt * A / 2) / left, _times_B(dt / left, B)
    I = torch.eye(A.shape[0], dtype=A.dtype, device=A.device)
    left = I - dt * A / 2
    return torch.linalg.solve(left, I + dt * A / 2), _solve(left, dt * B)


def euler(A, B, dt, *, diagonal: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward Euler: follow the derivative at the start of the step.

    x_k ≈ x_{k-1} + Δ (A x_{k-1} + B u_k), so A_bar = I + ΔA and B_bar = Δ B.
    Cheap, but for large Δ the eigenvalue 1 + Δλ leaves the unit disk and a stable
    continuous system becomes an unstable recurrence.

    Args and Returns: as :func:`zoh`.
    """
    A, B, dt, diag = _check(A, B, dt, diagonal)
    if diag:
        return 1 + dt * A, _times_B(dt * torch.ones_like(A), B)
    I = torch.eye(A.shape[0], dtype=A.dtype, device=A.device)
    return I + dt * A, dt * B


# Every rule by name (sseq.step_size draws them side by side).
RULES = {"zoh": zoh, "bilinear": bilinear, "euler": euler}
