"""HiPPO: memory as online function approximation (Gu et al. 2020, arXiv 2008.07669).

Summarize the whole past of a signal u on [0, t] by N numbers: the coefficients of
its projection onto N orthogonal polynomials under a measure ω(t, s) that says how much
the moment s <= t of the past matters. HiPPO's discovery is that these coefficients obey
a linear ODE, so they can be updated online as t grows:

    c'(t) = (1/θ(t)) (A c(t) + B u(t)),    c (n,),  A (n, n),  B (n,)

with the time scale θ(t) = t for LegS (uniform over all history) and a constant θ for
LegT (a sliding window of length θ) and LagT (an exponential decay with time constant θ).
Throughout, the **sign is folded into A**: every A here is stable, its eigenvalues
lie in the left half-plane (the paper writes c' = -A c + B u with A positive).

The module goes small to big: the matrices, the symbolic derivation of LegS, the
polynomial bases, the online recurrence (``project``), the same coefficients computed
offline by quadrature (``project_offline``, the definition the recurrence must match),
the reconstruction of the past from the coefficients (``reconstruct``), then the
chapter's explorer. Times in the past are ``s`` (0 <= s <= t), the present is ``t``.
"""

from __future__ import annotations

import math
import numbers
from contextlib import contextmanager

import sympy as sp
import torch

__all__ = ["MEASURES", "basis", "explorer", "lagt", "legs", "legs_symbolic", "legt",
           "lmu", "plot_memory", "project", "project_offline", "reconstruct",
           "reconstruction_error", "signal", "transition"]

MEASURES = ("legs", "legt", "lagt")


def _check_N(N) -> int:
    if isinstance(N, bool) or not isinstance(N, numbers.Integral):
        raise TypeError(f"N must be an int >= 1, got {type(N).__name__} ({N!r})")
    if N < 1:
        raise ValueError(f"N must be an int >= 1, got {N}")
    return int(N)


def _check_positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0 \
            or not math.isfinite(value):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def _check_measure(measure) -> str:
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {MEASURES}, got {measure!r}")
    return measure


# --- The matrices ---------------------------------------------------------------------


def legs(N: int) -> tuple[torch.Tensor, torch.Tensor]:
    """HiPPO-LegS: the Legendre projection of the whole history, measure uniform on [0, t].

        A_nk = -sqrt(2n+1) sqrt(2k+1)  (n > k),   A_nn = -(n+1),   A_nk = 0  (n < k)
        B_n  =  sqrt(2n+1)

    for the ODE c'(t) = (1/t)(A c(t) + B u(t)). A is lower triangular with the
    eigenvalues -1, -2, ..., -N: stable.

    Returns:
        ``(A, B)``: float64 tensors of shapes (n, n) and (n,).
    """
    N = _check_N(N)
    r = torch.sqrt(2 * torch.arange(N, dtype=torch.float64) + 1)  # (n,)
    A = -torch.tril(r[:, None] * r[None, :], diagonal=-1)  # (n, n)
    A -= torch.diag(torch.arange(1, N + 1, dtype=torch.float64))
    return A, r.clone()


def legt(N: int) -> tuple[torch.Tensor, torch.Tensor]:
    """HiPPO-LegT: Legendre projection of a sliding window [t - θ, t], measure 1/θ there.

        A_nk = -sqrt(2n+1) sqrt(2k+1) * (1 if n >= k else (-1)^(n-k)),   B_n = sqrt(2n+1)

    for the window length θ = 1; for another θ the ODE is c' = (1/θ)(A c + B u).
    This is the normalized form of the official code (state-spaces ``transition('legt')``).
    The paper writes LegT in the unnormalized basis P_n instead, which gives exactly the
    LMU's matrices (see :func:`lmu`): the same system in rescaled coordinates.

    Returns:
        ``(A, B)``: float64 tensors of shapes (n, n) and (n,).
    """
    N = _check_N(N)
    q = torch.arange(N, dtype=torch.float64)
    r = torch.sqrt(2 * q + 1)  # (n,)
    n, k = q[:, None], q[None, :]
    sign = torch.where(n >= k, 1.0, (-1.0) ** (n - k))  # (n, n)
    return -r[:, None] * sign * r[None, :], r.clone()


def lagt(N: int) -> tuple[torch.Tensor, torch.Tensor]:
    """HiPPO-LagT: Laguerre projection under the exponentially decaying measure e^(-(t-x)).

        A_nk = -1  (n >= k),   A_nk = 0  (n < k),   B_n = 1

    for the time constant θ = 1 (else c' = (1/θ)(A c + B u)), as in the paper: the
    coefficients c_n(t) = ∫_0^inf u(t-s) L_n(s) e^(-s) ds, since L_n(0) = 1 gives B and
    L_n' = -(L_0 + ... + L_{n-1}) and (e^(-s))' = -e^(-s) give A. The official code's
    ``transition('lagt')`` adds I/2 to A (its basis carries an extra e^(-s/2), the
    "tilted" variant), so its eigenvalues are -1/2 where these are -1.

    Returns:
        ``(A, B)``: float64 tensors of shapes (n, n) and (n,).
    """
    N = _check_N(N)
    return -torch.tril(torch.ones(N, N, dtype=torch.float64)), torch.ones(N, dtype=torch.float64)


def lmu(N: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The Legendre Memory Unit's matrices (Voelker et al. 2019) for the window θ = 1.

        A_nk = (2n+1) * (-1 if n < k else (-1)^(n-k+1)),   B_n = (2n+1) (-1)^n

    LegT in other coordinates: with S = diag((-1)^n sqrt(2n+1)), S^-1 A S and S^-1 B are
    :func:`legt`'s matrices.

    Returns:
        ``(A, B)``: float64 tensors of shapes (n, n) and (n,).
    """
    N = _check_N(N)
    q = torch.arange(N, dtype=torch.float64)
    n, k = q[:, None], q[None, :]
    A = (2 * n + 1) * torch.where(n < k, -1.0, (-1.0) ** (n - k + 1))  # (n, n)
    return A, (2 * q + 1) * (-1.0) ** q


def transition(measure: str, N: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(A, B)`` of ``measure`` ("legs", "legt" or "lagt") with N coefficients."""
    return {"legs": legs, "legt": legt, "lagt": lagt}[_check_measure(measure)](N)


def _legendre_coefficients(f: sp.Expr, z: sp.Symbol, K: int) -> list[sp.Expr]:
    """Coefficients a_k of f(z) = Σ_k a_k P_k(z):  a_k = (2k+1)/2 ∫_{-1}^{1} f P_k dz."""
    antiderivatives = [sp.Poly(f * sp.legendre(k, z), z).integrate() for k in range(K)]
    return [sp.Rational(2 * k + 1, 2) * (F.eval(1) - F.eval(-1))
            for k, F in enumerate(antiderivatives)]


def legs_symbolic(N: int) -> tuple[sp.Matrix, sp.Matrix]:
    """LegS's ``(A, B)`` derived with sympy from the measure, exactly (square roots kept).

    With z = 2s/t - 1 and the basis p_n(s) = sqrt(2n+1) P_n(z), differentiate the
    coefficient c_n(t) = (1/t) ∫_0^t u(s) p_n(s) ds by Leibniz's rule:

        t c_n'(t) = -c_n + p_n(t) u(t) + (1/t) ∫_0^t u(s) [t ∂_t p_n(s)] ds,
        t ∂_t p_n(s) = -sqrt(2n+1) (z+1) P_n'(z) = -sqrt(2n+1) Σ_k a_nk P_k(z),

    so A_nk = -δ_nk - sqrt(2n+1) a_nk / sqrt(2k+1) and B_n = p_n(t) = sqrt(2n+1) P_n(1).
    The a_nk are computed by projecting (z+1) P_n'(z) onto each P_k: the closed form
    (a_nk = 2k+1 for k < n, a_nn = n) is what comes out, not what goes in.

    Returns:
        ``(A, B)``: sympy matrices of shapes (n, n) and (n, 1).
    """
    N = _check_N(N)
    z = sp.Symbol("z")
    A, B = sp.zeros(N, N), sp.zeros(N, 1)
    for n in range(N):
        a = _legendre_coefficients((z + 1) * sp.diff(sp.legendre(n, z), z), z, N)
        for k in range(N):
            A[n, k] = -sp.KroneckerDelta(n, k) - sp.sqrt(2 * n + 1) * a[k] / sp.sqrt(2 * k + 1)
        B[n] = sp.sqrt(2 * n + 1) * sp.legendre(n, 1)
    return A, B


# --- The bases: what the coefficients mean ---------------------------------------------


def _three_term(s: torch.Tensor, N: int, laguerre: bool) -> torch.Tensor:
    """P_n(s) (Legendre) or L_n(s) (Laguerre) for n < N by their recurrences; (..., n).

        (n+1) P_{n+1} = (2n+1) s P_n - n P_{n-1}
        (n+1) L_{n+1} = (2n+1-s) L_n - n L_{n-1}
    """
    values = [torch.ones_like(s), 1 - s if laguerre else s.clone()]
    for n in range(1, N - 1):
        factor = (2 * n + 1 - s) if laguerre else (2 * n + 1) * s
        values.append((factor * values[n] - n * values[n - 1]) / (n + 1))
    return torch.stack(values[:N], dim=-1)


def basis(measure: str, N: int, *, t: float, s, theta: float = 1.0) -> torch.Tensor:
    """The functions p_n(s) whose combination Σ c_n(t) p_n(s) approximates u(s), s ≤ t.

        legs: p_n(s) = sqrt(2n+1) P_n(2s/t - 1)           on [0, t]
        legt: p_n(s) = sqrt(2n+1) P_n(2(s-t)/θ + 1)        on [t - θ, t]
        lagt: p_n(s) = L_n((t - s)/θ)                      on (-inf, t]

    Args:
        s: times in the past, a tensor or sequence of shape (m,).

    Returns:
        A float64 tensor of shape (m, n); NaN where s is outside the measure's support.
    """
    measure, N = _check_measure(measure), _check_N(N)
    t, theta = _check_positive("t", t), _check_positive("theta", theta)
    s = torch.as_tensor(s, dtype=torch.float64)  # (m,)
    if s.ndim != 1:
        raise ValueError(f"s must be times of shape (m,), got shape {tuple(s.shape)}")
    r = torch.sqrt(2 * torch.arange(N, dtype=torch.float64) + 1)  # (n,)
    if measure == "legs":
        p, inside = r * _three_term(2 * s / t - 1, N, False), (s >= 0) & (s <= t)
    elif measure == "legt":
        p, inside = r * _three_term(2 * (s - t) / theta + 1, N, False), (s >= t - theta) & (s <= t)
    else:
        p, inside = _three_term((t - s) / theta, N, True), s <= t
    return torch.where(inside[:, None], p, torch.nan)  # (m, n)


# --- Online: the recurrence, and the past it remembers ----------------------------------


@contextmanager
def _one_thread():
    """Run tiny sequential linear algebra on one thread: on a busy 2-core machine, thread
    hand-offs for (n, n) solves cost far more than the arithmetic."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _bilinear(A: torch.Tensor, B: torch.Tensor, dtau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Bilinear step of size Δτ:

        A_bar = (I - Δτ/2 A)^-1 (I + Δτ/2 A),    B_bar = (I - Δτ/2 A)^-1 Δτ B
    """
    I = torch.eye(A.shape[0], dtype=A.dtype)
    M = I - dtau / 2 * A
    return torch.linalg.solve(M, I + dtau / 2 * A), torch.linalg.solve(M, dtau * B)


def _run_legs(A: torch.Tensor, B: torch.Tensor, u: torch.Tensor, dt: float) -> torch.Tensor:
    """LegS over u (b, l) sampled at t_i = (i+1) dt: c_0 = u_0 e_0, then bilinear steps of
    Δτ_i = ln t_i − ln t_{i-1} in log-time τ = ln t; (b, l, n)."""
    I = torch.eye(A.shape[0], dtype=A.dtype)
    c = torch.nn.functional.pad(u[:, :1], (0, A.shape[0] - 1))  # (b, n): u_0 e_0, exact
    cs = [c]
    for i in range(1, u.shape[1]):
        dtau = math.log((i + 1) * dt) - math.log(i * dt)  # from the sample times themselves
        u_mean = (u[:, i - 1 : i] + u[:, i : i + 1]) / 2  # (b, 1)
        rhs = c + dtau / 2 * c @ A.T + dtau * u_mean * B  # (b, n): (I + Δτ/2 A) c + Δτ B u_mean
        # (I - Δτ/2 A) is lower triangular, like A: one O(n^2) solve per step
        c = torch.linalg.solve_triangular(I - dtau / 2 * A, rhs.T, upper=False).T
        cs.append(c)
    return torch.stack(cs, dim=1)


def _run_lti(A: torch.Tensor, B: torch.Tensor, u: torch.Tensor, dtau: float) -> torch.Tensor:
    """LegT / LagT over u (b, l) from c = 0, one fixed bilinear step of size Δτ; (b, l, n)."""
    A_bar, B_bar = _bilinear(A, B, dtau)
    c = torch.zeros(u.shape[0], A.shape[0], dtype=A.dtype)  # (b, n)
    cs = []
    for i in range(u.shape[1]):
        u_prev = u[:, i - 1 : i] if i > 0 else u[:, :1]  # u_0 held on (0, t_0]
        c = c @ A_bar.T + (u_prev + u[:, i : i + 1]) / 2 * B_bar  # (b, n)
        cs.append(c)
    return torch.stack(cs, dim=1)


def project(u, measure: str = "legs", N: int = 32, *, dt: float = 1.0,
            theta: float = 1.0) -> torch.Tensor:
    """Run HiPPO online over a sampled signal: the coefficients c_i after each sample.

    The sample u_i is u(t_i) at t_i = (i+1) dt; the signal is u_0 on (0, t_0], zero
    before. Each step integrates c' = (1/θ(t))(A c + B u) with the bilinear (trapezoidal)
    rule in the system's own clock τ, where dτ = dt/θ(t), the input averaged over the step:

        c_i = (I - Δτ/2 A)^-1 ((I + Δτ/2 A) c_{i-1} + Δτ B (u_{i-1} + u_i) / 2)

    LegT and LagT: θ is constant, τ = t/θ and Δτ = dt/θ at every step. LegS: θ(t) = t,
    and in log-time τ = ln t it is time-invariant too, dc/dτ = A c + B u, with the step
    Δτ_i = ln t_i − ln t_{i-1}, computed from the sample times. It equals ln((i+1)/i)
    whatever dt: LegS has no time scale, and its memory does not depend on dt (up to
    rounding). Its first step starts at t = 0 (Δτ = inf) and lands on the exact
    c_0 = u_0 e_0. (The official code steps with 1/i from c = 0: close, with an O(1/i)
    start-up error.)

    Args:
        u: samples, shape (l,) or (b, l).
        measure: "legs", "legt" or "lagt".
        N: number of coefficients.
        dt: sampling interval: the sample times are t_i = (i+1) dt.
        theta: LegT's window length, LagT's time constant.

    Returns:
        float64 coefficients of shape (l, n), or (b, l, n) for batched u.
    """
    measure, N = _check_measure(measure), _check_N(N)
    dt, theta = _check_positive("dt", dt), _check_positive("theta", theta)
    u = torch.as_tensor(u)
    if u.ndim not in (1, 2) or u.shape[-1] == 0 or not u.is_floating_point():
        raise ValueError(f"u must be a non-empty float tensor of shape (l,) or (b, l), "
                         f"got shape {tuple(u.shape)} and dtype {u.dtype}")
    samples = u.detach().to(torch.float64).reshape(-1, u.shape[-1])  # (b, l)
    A, B = transition(measure, N)
    with _one_thread():
        c = (_run_legs(A, B, samples, dt) if measure == "legs"
             else _run_lti(A, B, samples, dt / theta))
    return c.reshape(*u.shape, N)  # (l, n) or (b, l, n)


def project_offline(u, measure: str = "legs", N: int = 32, *, t: float, theta: float = 1.0,
                    panels: int = 64, nodes: int = 32) -> torch.Tensor:
    """The coefficients by their definition, offline: the projection of u's past, by quadrature.

        c_n(t) = ∫ u(s) p_n(s) dω(t, s)
        legs: (1/t) ∫_0^t u p_n ds,   legt: (1/θ) ∫_{t-θ}^t u p_n ds,
        lagt: (1/θ) ∫_{-inf}^t u(s) L_n((t-s)/θ) e^{-(t-s)/θ} ds,

    with u = 0 before s = 0. By the projection proposition these are the best coefficients;
    :func:`project` must reach the same numbers online, from samples, without looking back.
    Computed by composite Gauss–Legendre quadrature: ``panels`` equal pieces of the support
    within [0, t], ``nodes`` points each (exact for polynomials of degree < 2·nodes per piece).

    Args:
        u: the signal, a function of times ``(m,)`` float64 → values ``(m,)`` (for instance
            ``lambda s: signal("bumps", s)``): quadrature needs it between the samples too.
        measure, N, theta: as in :func:`project`; t: the present.

    Returns:
        float64 coefficients of shape (n,).
    """
    import numpy as np

    measure, N = _check_measure(measure), _check_N(N)
    t, theta = _check_positive("t", t), _check_positive("theta", theta)
    start = t - theta if measure == "legt" and t > theta else 0.0
    z, w = (torch.from_numpy(a) for a in np.polynomial.legendre.leggauss(nodes))  # on [-1, 1]
    edges = torch.linspace(start, t, panels + 1, dtype=torch.float64)
    half = (edges[1:] - edges[:-1])[:, None] / 2  # (panels, 1)
    s = ((edges[:-1, None] + edges[1:, None]) / 2 + half * z).reshape(-1)  # (panels * nodes,)
    weights = (half * w).reshape(-1)  # ds
    weights = weights * {"legs": 1 / t, "legt": 1 / theta,
                         "lagt": torch.exp(-(t - s) / theta) / theta}[measure]
    values = torch.as_tensor(u(s), dtype=torch.float64)
    if values.shape != s.shape:
        raise ValueError(f"u must map times of shape (m,) to values of shape (m,), got "
                         f"{tuple(values.shape)} for m = {len(s)}")
    return (weights * values) @ basis(measure, N, t=t, s=s, theta=theta)  # (n,)


def reconstruct(c, measure: str = "legs", *, t: float, s, theta: float = 1.0) -> torch.Tensor:
    """The approximation of the past that N coefficients hold:  u(s) ≈ Σ_n c_n p_n(s).

    Args:
        c: coefficients at time t, shape (..., n) (a row of :func:`project`'s output).
        t: the time the coefficients were taken at.
        s: times in the past to evaluate at, shape (m,).

    Returns:
        float64 tensor of shape (..., m); NaN outside the measure's support (see :func:`basis`).
    """
    c = torch.as_tensor(c, dtype=torch.float64)
    if c.ndim < 1:
        raise ValueError(f"c must have shape (..., n), got a scalar {c!r}")
    P = basis(measure, c.shape[-1], t=t, s=s, theta=theta)  # (m, n)
    return c @ P.T  # (..., m)


def reconstruction_error(c, u, measure: str = "legs", *, t: float, s,
                         theta: float = 1.0) -> float:
    """Root-mean-square error of the remembered past, sqrt(mean_s (Σ_n c_n p_n(s) - u(s))^2),
    over the points s that the measure covers (all of [0, t] for LegS).

    Args:
        c: coefficients at time t, shape (n,).
        u: the true signal at the times s, shape (m,).
        s: times, shape (m,).
    """
    u_hat = reconstruct(c, measure, t=t, s=s, theta=theta)  # (m,)
    covered = ~torch.isnan(u_hat)
    return float(torch.sqrt(torch.mean((u_hat - torch.as_tensor(u))[covered] ** 2)))


# --- The chapter's explorer --------------------------------------------------------------

_SIGNALS = {
    "sines": lambda s: torch.sin(6 * math.pi * s) + 0.5 * torch.sin(14 * math.pi * s + 1),
    "chirp": lambda s: torch.sin(2 * math.pi * (2 * s + 6 * s**2)),
    "steps": lambda s: torch.where(s < 0.3, 0.0, 1.0) - torch.where(s < 0.7, 0.0, 1.5),
    "bumps": lambda s: sum(torch.exp(-(((s - m) / 0.04) ** 2)) for m in (0.2, 0.45, 0.8)),
}


def signal(name: str, s) -> torch.Tensor:
    """A named test signal ("sines", "chirp", "steps", "bumps") at times s in [0, 1]; (m,)."""
    if name not in _SIGNALS:
        raise ValueError(f"signal must be one of {sorted(_SIGNALS)}, got {name!r}")
    return _SIGNALS[name](torch.as_tensor(s, dtype=torch.float64)).to(torch.float64)


def plot_memory(ax, signal_name: str = "bumps", N: int = 16, measure: str = "legs", *,
                L: int = 1000, theta: float = 0.3):
    """Run HiPPO over a named signal on [0, 1] and draw the past it remembers at t = 1.

    The update function of :func:`explorer`; runs without a browser.

    Args:
        ax: a matplotlib Axes.
        signal_name: one of :func:`signal`'s names.
        N, measure, theta: as in :func:`project`.
        L: number of samples on [0, 1].

    Returns:
        ``(ax, rmse)``: the axes, and the root-mean-square reconstruction error over
        the part of the past the measure covers.
    """
    from sseq.viz import PALETTE

    s = torch.arange(1, L + 1, dtype=torch.float64) / L  # (l,) sample times t_i
    u = signal(signal_name, s)
    c = project(u, measure, N, dt=1 / L, theta=theta)[-1]  # (n,) coefficients at t = 1
    u_hat = reconstruct(c, measure, t=1.0, s=s, theta=theta)  # (l,)
    rmse = reconstruction_error(c, u, measure, t=1.0, s=s, theta=theta)
    ax.plot(s, u, color=PALETTE["theory"], lw=3, alpha=0.5, label="signal u(s)")
    ax.plot(s, u_hat, color=PALETTE["state"], label=f"{measure} reconstruction, N = {N}")
    lo, hi = float(u.min()), float(u.max())
    ax.set(xlabel="time s (seconds)", ylabel="u(s)", xlim=(0, 1),
           ylim=(lo - 0.3 * (hi - lo), hi + 0.3 * (hi - lo)),
           title=f"What {N} numbers remember at t = 1 s (RMSE {rmse:.3f})")
    ax.legend(loc="upper left", ncols=2)
    return ax, rmse


def explorer():
    """An ipywidgets explorer: signal, N, measure and θ → the remembered past."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    def update(signal_name="bumps", N=16, measure="legs", theta=0.3):
        fig, ax = plt.subplots(figsize=(6.4, 3.4))
        plot_memory(ax, signal_name, N, measure, theta=theta)
        plt.show()

    return widgets.interactive(
        update,
        signal_name=widgets.Dropdown(options=sorted(_SIGNALS), value="bumps",
                                     description="signal"),
        N=widgets.IntSlider(value=16, min=1, max=64, description="N"),
        measure=widgets.Dropdown(options=MEASURES, value="legs", description="measure"),
        theta=widgets.FloatSlider(value=0.3, min=0.02, max=1.0, step=0.02,
                                  description="θ (LegT, LagT)"),
    )
