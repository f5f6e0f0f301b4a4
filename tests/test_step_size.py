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
# --- what the mutation tests found untested (make mutants) ------------------------------------
A_PAIR = torch.tensor([-0.5 + 3j, -0.5 - 3j], dtype=torch.complex128)


def test_plot_step_draws_what_the_chapter_describes():
    """Protects the explorer's figure, which readers see and whose titles and labels are its
    alt text: the unit circle, one marker style and colour per rule, stability in the legend,
    the response clipped to ±1000, the axes' limits, labels and titles."""
    from matplotlib.colors import to_rgba

    from sseq.viz import PALETTE

    A = torch.tensor([-1.0 + 0j, -0.5 + 3j, -0.5 - 3j], dtype=torch.complex128)
    dt, L = 2.5, 30  # Euler's eigenvalue 1 − 2.5 = −1.5: unstable, |λ| < 2, a response past 1e3
    fig, (ax_disk, ax_k) = plt.subplots(1, 2)
    step_size.plot_step((ax_disk, ax_k), dt, A, L=L)
    circle, *markers = ax_disk.get_lines()
    x, y = circle.get_xdata(), circle.get_ydata()
    np.testing.assert_allclose(np.hypot(x, y), 1.0, atol=1e-12)
    assert (x[0], y[0]) == (1.0, 0.0) and np.allclose((x[-1], y[-1]), (1.0, 0.0), atol=1e-12)
    assert np.hypot(np.diff(x), np.diff(y)).max() < 0.05  # a smooth, closed circle
    assert circle.get_linewidth() == 1 and to_rgba(circle.get_color()) == to_rgba("0.5")
    found = step_size.step_response(A, dt, L=L)
    colors = {"zoh": PALETTE["state"], "bilinear": PALETTE["accent"],
              "euler": PALETTE["attention"]}
    stable = {"zoh": "stable", "bilinear": "stable", "euler": "unstable"}
    assert [m.get_marker() for m in markers] == ["o", "x", "s"]
    for line, name in zip(markers, ["zoh", "bilinear", "euler"], strict=True):
        assert line.get_label() == f"{name} ({stable[name]})"
        assert to_rgba(line.get_color()) == to_rgba(colors[name])
        np.testing.assert_allclose(line.get_xdata(), found[name][0].real.numpy())
        np.testing.assert_allclose(line.get_ydata(), found[name][0].imag.numpy())
    for line, name in zip(ax_k.get_lines(), ["zoh", "bilinear", "euler"], strict=True):
        assert line.get_label() == name and to_rgba(line.get_color()) == to_rgba(colors[name])
        assert list(line.get_xdata()) == list(range(L))
        np.testing.assert_allclose(line.get_ydata(), found[name][1].clip(-1e3, 1e3).numpy())
    euler = ax_k.get_lines()[2].get_ydata()
    assert euler.max() == 1e3 and euler.min() == -1e3  # clipped on both sides
    scale = np.abs(ax_k.get_lines()[0].get_ydata()).max()
    np.testing.assert_allclose(ax_k.get_ylim(), (-1.3 * scale, 1.3 * scale))
    assert ax_disk.get_xlim() == (-1.6, 1.6) and ax_disk.get_ylim() == (-1.6, 1.6)
    assert ax_disk.get_aspect() == 1.0
    assert (ax_disk.get_xlabel(), ax_disk.get_ylabel()) == ("Re", "Im")
    assert ax_disk.get_title() == "eigenvalues of A_bar, Δ = 2.5"
    assert (ax_k.get_xlabel(), ax_k.get_ylabel(), ax_k.get_title()) == (
        "step k", "K_k", "impulse response")
    for ax, loc in ((ax_disk, 3), (ax_k, 1)):  # lower left, upper right
        legend = ax.get_legend()
        assert legend._loc == loc and legend.get_texts()[0].get_fontsize() == 7
    plt.close(fig)


def test_plot_step_scales_to_the_drawn_response_and_draws_the_rules_asked():
    """Protects: the y-range fits the zoh response over the L steps drawn (here one step,
    smaller than the next), only the rules asked for are drawn, and L defaults to 100."""
    A = torch.tensor([-0.05 + 1j, -0.05 - 1j], dtype=torch.complex128)
    fig, axes = plt.subplots(1, 2)
    step_size.plot_step(axes, 2.0, A, L=1, rules=("zoh",))
    K = step_size.step_response(A, 2.0, L=2, rules=("zoh",))["zoh"][1]
    assert abs(K[1]) > abs(K[0])
    np.testing.assert_allclose(axes[1].get_ylim(), (-1.3 * abs(K[0]), 1.3 * abs(K[0])))
    assert [ln.get_label() for ln in axes[1].get_lines()] == ["zoh"]
    step_size.plot_step(axes, 0.1, A)
    assert all(len(ln.get_xdata()) == 100 for ln in axes[1].get_lines())
    assert all(len(K) == 100 for _, K in step_size.step_response(A, 0.1).values())
    plt.close(fig)


def test_an_integrator_is_not_called_stable():
    """Protects the stability test |λ| < 1 strictly: A = 0 gives λ = 1 under every rule, a
    memory that never fades, labelled unstable."""
    fig, axes = plt.subplots(1, 2)
    step_size.plot_step(axes, 0.1, torch.zeros(1, dtype=torch.complex128))
    assert [ln.get_label() for ln in axes[0].get_lines()[1:]] == [
        "zoh (unstable)", "bilinear (unstable)", "euler (unstable)"]
    plt.close(fig)


def test_step_response_takes_a_real_A_and_refuses_bad_input():
    """Protects: a real A is made complex (its eigenvalues are complex numbers), an integer A
    is refused by name, and an unknown rule is named with the known ones."""
    found = step_size.step_response(torch.tensor([-1.0, -2.0], dtype=torch.float64), 0.1, L=5)
    np.testing.assert_allclose(found["zoh"][0].numpy(), np.exp([-0.1, -0.2]), atol=1e-15)
    assert found["zoh"][0].dtype == torch.complex128
    with pytest.raises(TypeError, match="^A must be a floating-point"):
        step_size.step_response(torch.tensor([-1, -2]), 0.1)
    with pytest.raises(ValueError, match=r"^rules must be among \['bilinear', 'euler', 'zoh'\], "
                                         r"got 'rk4'$"):
        step_size.step_response(A_PAIR, 0.1, rules=("zoh", "rk4"))


def test_step_explorer_slider_and_redraw(monkeypatch):
    """Protects the explorer: a log slider for Δ from 10⁻³ to 10^0.5 starting at 0.1, and each
    move redraws a 9.6 × 3.8 figure of two panels side by side with the new Δ and L steps
    (ipywidgets swallows errors in the update, so the drawn figure is what is checked)."""
    shown = []
    monkeypatch.setattr(plt, "show", lambda: shown.append(plt.gcf()))
    explorer = step_size.step_explorer(A_PAIR, L=20)
    slider = explorer.children[0]
    assert (slider.value, slider.base, slider.min, slider.max, slider.step) == (
        pytest.approx(0.1), 10, -3, 0.5, 0.05)
    assert (slider.description, slider.readout_format) == ("Δ", ".3f")
    shown.clear()
    slider.value = 0.5
    assert len(shown) == 1
    fig = shown[0]
    assert tuple(fig.get_size_inches()) == pytest.approx((9.6, 3.8))
    left, right = fig.get_axes()
    assert left.get_position().y0 == right.get_position().y0 < 0.5  # side by side
    assert left.get_title() == "eigenvalues of A_bar, Δ = 0.5"
    assert all(len(ln.get_xdata()) == 20 for ln in right.get_lines())
    shown.clear()
    step_size.step_explorer(A_PAIR)  # draws once at creation, with L = 100 steps
    assert len(shown[0].get_axes()[1].get_lines()[0].get_xdata()) == 100
    plt.close("all")
