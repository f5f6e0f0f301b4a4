"""Chapter 4's explorer of the step size: eigenvalues of A_bar and the impulse response."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch

from sseq import step_size

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def test_step_response_and_plot_step_draw_the_eigenvalues_and_kernel():
    A = torch.tensor([-0.5 + 3j, -0.5 - 3j, -1.0 + 0j], dtype=torch.complex128)
    dt, L = 0.2, 30
    found = step_size.step_response(A, dt, L=L)
    eig, K = found["zoh"]
    np.testing.assert_allclose(eig.numpy(), np.exp(dt * A.numpy()), atol=1e-12)
    B_bar = (np.exp(dt * A.numpy()) - 1) / A.numpy()
    want = np.array([(B_bar * np.exp(dt * A.numpy()) ** k).sum().real for k in range(L)])
    np.testing.assert_allclose(K.numpy(), want, atol=1e-12)
    fig, axes = plt.subplots(1, 2)
    step_size.plot_step(axes, dt, A, L=L)
    step_size.plot_step(axes, 3.0, A, L=L)  # redrawn, not stacked
    lines = [ln for ln in axes[0].get_lines() if ln.get_label().startswith("euler")]
    assert len(lines) == 1 and "unstable" in lines[0].get_label()
    assert len(axes[1].get_lines()) == 3
    np.testing.assert_allclose(axes[1].get_lines()[0].get_ydata(),
                               step_size.step_response(A, 3.0, L=L)["zoh"][1].numpy())
    plt.close(fig)


def test_step_explorer_updates_without_a_browser():
    A = torch.tensor([-0.5 + 3j, -0.5 - 3j], dtype=torch.complex128)
    explorer = step_size.step_explorer(A, L=20)
    assert explorer.children[0].description == "Δ"
    explorer.children[0].value = 0.5  # the update runs without a browser
    plt.close("all")


def test_zoh_kernel_over_dt_is_the_continuous_response_averaged_over_each_step():
    """Oracle: scipy's quad of the continuous response y(t) = Σ e^{λ t} over [kΔ, (k+1)Δ]."""
    import math

    from scipy import integrate

    from sseq import step_size as ss

    mode = torch.tensor([-0.5 + 2j * math.pi, -0.5 - 2j * math.pi], dtype=torch.complex128)
    y = lambda t: 2 * math.exp(-0.5 * t) * math.cos(2 * math.pi * t)  # noqa: E731
    assert float(ss.continuous_response(mode, torch.tensor([0.3]))[0]) == pytest.approx(y(0.3))
    for dt in (0.01, 0.25):
        _, K = ss.step_response(mode, dt, L=12, rules=("zoh",))["zoh"]
        average = ss.step_average(mode, dt, 12)
        oracle = [integrate.quad(y, k * dt, (k + 1) * dt)[0] / dt for k in range(12)]
        np.testing.assert_allclose(average.numpy(), oracle, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose((K / dt).numpy(), oracle, rtol=1e-10, atol=1e-12)
