"""The step Δ as a time scale: how Δ moves A_bar's eigenvalues and the impulse response.

Chapter 4's explorer. For a stable diagonal A, each discretization rule of
:mod:`sseq.discretize` maps the eigenvalues of A to those of A_bar, and the impulse response
K_k = Σ_n A_bar_n^k B_bar_n (:func:`sseq.ssm.kernel`) shows how long the discrete system
remembers: small Δ, long memory. Built on :mod:`sseq.discretize` and :mod:`sseq.ssm`.
"""

from __future__ import annotations

import torch

from sseq.discretize import RULES, _as_float_tensor
from sseq.ssm import kernel

__all__ = ["continuous_response", "plot_step", "step_average", "step_explorer", "step_response"]


def step_response(A, dt, *, L: int = 100, rules=tuple(RULES)) -> dict:
    """For each rule, the eigenvalues of A_bar and the impulse response of x' = Ax + u, y = Σx.

    Args:
        A: the diagonal ``(n,)`` of a stable A, complex (conjugate pairs give a real response).
        dt: the step Δ > 0.
        L: the number of steps of the response.
        rules: names among ``"zoh"``, ``"bilinear"``, ``"euler"``.

    Returns:
        ``{rule: (eigenvalues (n,) complex, K (L,) real)}`` with K_k = Σ_n A_bar_n^k B_bar_n.
    """
    A = _as_float_tensor(A, "A").to(torch.complex128)
    out = {}
    for name in rules:
        if name not in RULES:
            raise ValueError(f"rules must be among {sorted(RULES)}, got {name!r}")
        A_bar, B_bar = RULES[name](A, torch.ones_like(A), dt, diagonal=True)
        out[name] = (A_bar, kernel(A_bar, B_bar, torch.ones_like(A), L).real)
    return out


def continuous_response(A, t) -> torch.Tensor:
    """The continuous impulse response of x' = Ax + u, y = Σx for a diagonal A: Σ_n e^{λ_n t}.

    Args:
        A: the diagonal ``(n,)`` (complex; conjugate pairs give a real response).
        t: times ``(m,)``.

    Returns:
        The real part of the response, ``(m,)`` float64.
    """
    A = _as_float_tensor(A, "A").to(torch.complex128)
    t = torch.as_tensor(t, dtype=torch.float64)
    return torch.exp(t[:, None] * A).sum(-1).real  # (m,)


def step_average(A, dt, L: int) -> torch.Tensor:
    """The continuous response averaged over each step: (1/Δ) ∫_{kΔ}^{(k+1)Δ} y(t) dt, k < L.

    Under zero-order hold this is *exactly* K_k / Δ, the kernel divided by the step: the
    input held over one step of length Δ is a pulse, and the output samples the response to
    that pulse. Computed in closed form, Σ_n e^{kΔλ_n} (e^{Δλ_n} − 1) / (Δλ_n).

    Returns:
        ``(L,)`` float64.
    """
    A = _as_float_tensor(A, "A").to(torch.complex128)
    k = torch.arange(L, dtype=torch.float64)[:, None]  # (L, 1)
    return (torch.exp(k * dt * A) * torch.expm1(dt * A) / (dt * A)).sum(-1).real  # (L,)


def plot_step(axes, dt, A, *, L: int = 100, rules=tuple(RULES)):
    """The explorer's update: Δ moves A_bar's eigenvalues (left) and the impulse response (right).

    Args:
        axes: two matplotlib Axes.
        dt, A, L, rules: as :func:`step_response`.

    Returns:
        ``axes``, drawn afresh.
    """
    import numpy as np

    from sseq.viz import PALETTE

    colors = {"zoh": PALETTE["state"], "bilinear": PALETTE["accent"], "euler": PALETTE["attention"]}
    ax_disk, ax_k = axes
    ax_disk.clear()
    ax_k.clear()
    theta = np.linspace(0, 2 * np.pi, 200)
    ax_disk.plot(np.cos(theta), np.sin(theta), color="0.5", lw=1)
    for i, (name, (eig, K)) in enumerate(step_response(A, dt, L=L, rules=rules).items()):
        stable = bool((eig.abs() < 1).all())
        label = f"{name} ({'stable' if stable else 'unstable'})"
        ax_disk.plot(eig.real, eig.imag, "oxs"[i % 3], color=colors[name], label=label)
        ax_k.plot(np.arange(L), K.clip(-1e3, 1e3), color=colors[name], label=name)
    ax_disk.set(xlim=(-1.6, 1.6), ylim=(-1.6, 1.6), aspect="equal", xlabel="Re",
                ylabel="Im", title=f"eigenvalues of A_bar, Δ = {dt:.3g}")
    ax_disk.legend(loc="lower left", fontsize=7)
    scale = float(step_response(A, dt, L=L, rules=("zoh",))["zoh"][1].abs().max())
    ax_k.set(ylim=(-1.3 * scale, 1.3 * scale), xlabel="step k", ylabel="K_k",
             title="impulse response")
    ax_k.legend(loc="upper right", fontsize=7)
    return axes


def step_explorer(A, *, L: int = 100):
    """An ipywidgets explorer: a slider for Δ redraws :func:`plot_step` for the diagonal A."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    def update(dt=0.1):
        fig, axes = plt.subplots(1, 2, figsize=(9.6, 3.8))
        plot_step(axes, dt, A, L=L)
        plt.show()

    slider = widgets.FloatLogSlider(value=0.1, base=10, min=-3, max=0.5, step=0.05,
                                    description="Δ", readout_format=".3f")
    return widgets.interactive(update, dt=slider)
