"""Measured ‖∂h_T/∂h_t‖ against closed forms: ρ^k for the linear RNN with W = ρQ, the
explicit product of Jacobians diag(φ') W for the tanh RNN, and the max-slope bound."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from sseq import gradients  # noqa: E402


@pytest.mark.parametrize("rho", [0.5, 0.9, 1.0, 1.1])
def test_scaled_orthogonal_has_radius_and_norm_rho(rho):
    W = gradients.scaled_orthogonal(16, rho, seed=3)
    np.testing.assert_allclose(torch.linalg.svdvals(W).numpy(), rho, rtol=1e-12)
    np.testing.assert_allclose(torch.linalg.eigvals(W).abs().numpy(), rho, rtol=1e-10)


@pytest.mark.parametrize("rho", [0.9, 1.0, 1.1])
def test_linear_rnn_gradient_is_exactly_rho_to_the_k(rho):
    curve = gradients.gradient_norms(rho, 40, d_hidden=8, nonlinearity="linear")
    k = np.arange(41)
    np.testing.assert_array_equal(curve.distance, k)
    np.testing.assert_allclose(curve.measured, rho**k, rtol=1e-10)
    np.testing.assert_allclose(curve.predicted, rho**k, rtol=1e-12)


def test_tanh_rnn_matches_the_explicit_product_of_jacobians():
    W = gradients.scaled_orthogonal(6, 1.2, seed=0)
    drive = torch.randn(15, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    states, slopes = gradients.unroll(W, drive, "tanh")
    J = torch.eye(6, dtype=torch.float64)
    expected = [1.0]
    for s in range(15, 0, -1):  # ∂h_T/∂h_{s-1} = (∂h_T/∂h_s) diag(1 - h_s²) W
        J = J @ torch.diag(1 - states[s].detach() ** 2) @ W
        expected.append(float(torch.linalg.matrix_norm(J, ord=2)))
    np.testing.assert_allclose(gradients.jacobian_norms(states), expected, rtol=1e-10)
    np.testing.assert_allclose(slopes.numpy(), 1 - torch.stack(states[1:]).detach().numpy() ** 2)


def test_tanh_curve_lies_below_its_bound_and_saturation_makes_it_vanish():
    curve = gradients.gradient_norms(1.1, 60, nonlinearity="tanh")
    assert (curve.measured <= curve.bound * (1 + 1e-9)).all()
    assert (curve.bound <= 1.1 ** curve.distance * (1 + 1e-12)).all()
    assert curve.measured[-1] < 1e-2  # ρ > 1, yet the gradient vanishes
    # the estimate follows the measured decay rate within a factor of 30 over 60 steps
    ratio = curve.measured[1:] / curve.predicted[1:]
    assert (ratio > 1 / 30).all() and (ratio < 30).all()


def test_explore_draws_the_measured_curve_and_explorer_builds():
    fig, ax = plt.subplots()
    returned, curve = gradients.explore(0.9, 20, "linear", ax=ax)
    assert returned is ax and ax.get_yscale() == "log"
    np.testing.assert_allclose(ax.lines[0].get_ydata(), curve.measured[::1])
    np.testing.assert_allclose(ax.lines[1].get_ydata(), 0.9 ** np.arange(21), rtol=1e-12)
    assert "ρ = 0.9" in ax.get_title()
    plt.close(fig)
    explorer = gradients.gradient_explorer()
    assert [w.description for w in explorer.children[:3]] == ["ρ", "length T", "φ"]
    explorer.children[0].value = 1.2  # the update runs without a browser
    plt.close("all")


@pytest.mark.parametrize("kwargs, match", [
    ({"rho": 0}, "rho must be a positive number"),
    ({"length": 0}, "length must be a positive int"),
    ({"d_hidden": 2.0}, "d_hidden must be a positive int"),
    ({"nonlinearity": "relu"}, "nonlinearity must be one of"),
    ({"input_scale": -1}, "input_scale must be a number >= 0"),
])
def test_bad_arguments_are_rejected(kwargs, match):
    args = {"rho": 1.0, "length": 5, **kwargs}
    with pytest.raises(ValueError, match=match):
        gradients.gradient_norms(args.pop("rho"), args.pop("length"), **args)


# --- The LSTM's cell: the constant error carousel ------------------------------------------------


def test_lstm_without_recurrent_weights_has_exactly_the_carousel_gradient():
    """With W_hh = 0 the gates depend on the inputs alone: ∂c_T/∂c_t = Π diag(f_s) exactly."""
    curve = gradients.lstm_gradient_norms(30, d_hidden=6, forget_bias=2.0, recurrent=False)
    np.testing.assert_allclose(curve.measured, curve.carousel, rtol=1e-10, atol=1e-300)
    assert curve.carousel[0] == 1.0 and np.all(np.diff(curve.carousel) < 0)


def test_lstm_cell_gradient_matches_torch_lstm_cell_jacobian():
    """Oracle: torch.nn.LSTMCell run from step t, and autograd.functional.jacobian of c_T."""
    n, T, t = 5, 12, 4
    curve = gradients.lstm_gradient_norms(T, d_hidden=n, forget_bias=1.0, seed=3)
    g = torch.Generator().manual_seed(3)  # the same draws as lstm_gradient_norms
    bound = 1 / np.sqrt(n)
    w_ih, w_hh = ((2 * torch.rand(4 * n, n, generator=g, dtype=torch.float64) - 1) * bound
                  for _ in range(2))
    x = 0.5 * torch.randn(T, n, generator=g, dtype=torch.float64)
    cell = torch.nn.LSTMCell(n, n).double()
    with torch.no_grad():
        cell.weight_ih.copy_(w_ih)
        cell.weight_hh.copy_(w_hh)
        cell.bias_ih.zero_()
        cell.bias_hh.zero_()
        cell.bias_hh[n:2 * n] = 1.0
    h, c = torch.zeros(1, n, dtype=torch.float64), torch.zeros(1, n, dtype=torch.float64)
    for s in range(t - 1):  # up to (h_{t-1}, c_{t-1})
        h, c = cell(x[s][None], (h, c))
    i, f, gg, o = (x[t - 1] @ w_ih.T + h[0] @ w_hh.T + torch.tensor(
        [0.0] * n + [1.0] * n + [0.0] * 2 * n, dtype=torch.float64)).chunk(4)

    def last_cell(c_t):  # perturb c_t; h_t = o_t ⊙ tanh(c_t) follows it
        state = (torch.sigmoid(o) * torch.tanh(c_t))[None], c_t[None]
        for s in range(t, T):
            state = cell(x[s][None], state)
        return state[1][0]

    c_t = torch.sigmoid(f) * c[0] + torch.sigmoid(i) * torch.tanh(gg)
    J = torch.autograd.functional.jacobian(last_cell, c_t)
    assert curve.measured[T - t] == pytest.approx(float(torch.linalg.matrix_norm(J, ord=2)),
                                                   rel=1e-9)


def test_a_forget_bias_keeps_the_gradient_alive():
    """The measurement the chapter reads: with f ≈ 0.5 the cell forgets like the tanh RNN,
    with f ≈ 0.95 the gradient from 60 steps back is many orders of magnitude larger."""
    default = gradients.lstm_gradient_norms(60, forget_bias=0.0)
    remembering = gradients.lstm_gradient_norms(60, forget_bias=3.0)
    assert default.forget_mean == pytest.approx(0.5, abs=0.05)
    assert remembering.forget_mean > 0.9
    assert remembering.measured[60] > 1e6 * default.measured[60]
    with pytest.raises(ValueError, match="length must be a positive int"):
        gradients.lstm_gradient_norms(0)
# --- what the mutation tests found untested (make mutants) ------------------------------------


def test_gradient_norms_wiring_defaults_and_predictions_written_out():
    """Protects gradient_norms against an independent recomputation: W from ``seed``, the
    drive from ``seed + 1`` scaled by ``input_scale`` (defaults 32 states, 0.5, seed 0), and
    the two predictions ρ^k Π γ_s (root mean square slope) and ρ^k Π max φ' over the k most
    recent steps, written as loops."""
    rho, T = 1.05, 12
    curve = gradients.gradient_norms(rho, T)
    W = gradients.scaled_orthogonal(32, rho, seed=0)
    drive = 0.5 * torch.randn(T, 32, generator=torch.Generator().manual_seed(1),
                              dtype=torch.float64)
    states, slopes = gradients.unroll(W, drive, "tanh")
    np.testing.assert_allclose(curve.measured, gradients.jacobian_norms(states), rtol=1e-12)
    s = slopes.numpy()
    for k in range(T + 1):
        recent = s[T - k:]  # the k most recent steps' slopes
        rms = np.prod([np.sqrt((row**2).mean()) for row in recent])
        top = np.prod([row.max() for row in recent])
        assert curve.predicted[k] == pytest.approx(rho**k * rms, rel=1e-12)
        assert curve.bound[k] == pytest.approx(rho**k * top, rel=1e-12)
    assert (curve.rho, curve.nonlinearity) == (rho, "tanh") and type(curve.rho) is float
    other = gradients.gradient_norms(rho, T, d_hidden=32, input_scale=0.5, seed=0)
    np.testing.assert_array_equal(other.measured, curve.measured)
    seeded = gradients.gradient_norms(rho, T, d_hidden=4, seed=3)  # W from 3, the drive from 4
    drive = 0.5 * torch.randn(T, 4, generator=torch.Generator().manual_seed(4),
                              dtype=torch.float64)
    states, _ = gradients.unroll(gradients.scaled_orthogonal(4, rho, seed=3), drive)
    np.testing.assert_allclose(seeded.measured, gradients.jacobian_norms(states), rtol=1e-12)


def test_plot_gradient_norms_draws_markers_predictions_and_bounds():
    """Protects the figure: about 20 markers per measured curve, the prediction dashed and the
    bound dotted in the curve's colour, legend entries once, labelled axes, a log y-axis."""
    curves = [gradients.gradient_norms(rho, 60, d_hidden=4) for rho in (0.9, 1.1)]
    fig, ax = plt.subplots()
    assert gradients.plot_gradient_norms(ax, curves, bound=True) is ax
    lines = ax.get_lines()
    assert len(lines) == 6 and ax.get_yscale() == "log"
    for i, curve in enumerate(curves):
        marks, predicted, bound = lines[3 * i: 3 * i + 3]
        assert marks.get_marker() == "o" and marks.get_markersize() == 4
        assert marks.get_linestyle() == "None"
        np.testing.assert_array_equal(marks.get_xdata(), curve.distance[::3])  # 61 // 20 = 3
        np.testing.assert_array_equal(marks.get_ydata(), curve.measured[::3])
        assert (predicted.get_linestyle(), bound.get_linestyle()) == ("--", ":")
        np.testing.assert_array_equal(predicted.get_ydata(), curve.predicted)
        np.testing.assert_array_equal(bound.get_ydata(), curve.bound)
        for line in (predicted, bound):
            assert line.get_color() == marks.get_color() and line.get_alpha() == 0.8
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "ρ = 0.9 measured", "predicted", "upper bound", "ρ = 1.1 measured"]
    assert ax.get_xlabel() == "distance T − t (steps)" and ax.get_ylabel() == "‖∂h_T / ∂h_t‖"
    ax.clear()
    gradients.plot_gradient_norms(ax, curves[:1])
    assert len(ax.get_lines()) == 2  # no bound unless asked
    short = gradients.gradient_norms(0.9, 10, d_hidden=4)
    ax.clear()
    gradients.plot_gradient_norms(ax, [short])
    assert len(ax.get_lines()[0].get_xdata()) == 11  # fewer than 20 steps: every one
    plt.close(fig)


def test_explore_defaults_title_and_bound(monkeypatch):
    """Protects explore: defaults ρ = 1, T = 60, tanh (with its bound drawn), a new figure
    when no Axes is given, and a title that states the end-to-end norm."""
    ax, curve = gradients.explore()
    assert len(curve.distance) == 61 and curve.nonlinearity == "tanh" and curve.rho == 1.0
    assert len(ax.get_lines()) == 3
    assert ax.get_title() == f"tanh RNN, ρ = 1: ‖∂h_T/∂h_0‖ = {curve.measured[-1]:.2g}"
    ax, _ = gradients.explore(0.9, 20, "linear")
    assert len(ax.get_lines()) == 2  # exact prediction: no bound
    plt.close("all")


def test_gradient_explorer_controls_and_redraw(monkeypatch):
    """Protects the explorer's controls (ρ from 0.5 to 1.5 by 0.05 at 1, T from 5 to 200 by
    5 at 60, the two nonlinearities) and its redraw: a 6.4 × 3.4 figure of the chosen case
    (ipywidgets swallows errors in the update, so the drawn figure is what is checked)."""
    shown = []
    monkeypatch.setattr(plt, "show", lambda: shown.append(plt.gcf()))
    explorer = gradients.gradient_explorer()
    rho, length, phi = explorer.children[:3]
    assert (rho.value, rho.min, rho.max, rho.step) == (1.0, 0.5, 1.5, 0.05)
    assert (length.value, length.min, length.max, length.step) == (60, 5, 200, 5)
    assert list(phi.options) == ["tanh", "linear"] and phi.value == "tanh"
    shown.clear()
    length.value = 10
    phi.value = "linear"
    rho.value = 1.2
    fig = shown[-1]
    assert tuple(fig.get_size_inches()) == pytest.approx((6.4, 3.4))
    (ax,) = fig.get_axes()
    assert ax.get_title().startswith("linear RNN, ρ = 1.2:")
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), 1.2 ** np.arange(11), rtol=1e-10)
    plt.close("all")


@pytest.mark.parametrize("kwargs, match", [
    ({"rho": True}, "^rho must be a positive number, got True$"),
    ({"rho": "1"}, "^rho must be a positive number, got '1'$"),
    ({"length": True}, "^length must be a positive int, got True$"),
    ({"d_hidden": 0}, "^d_hidden must be a positive int, got 0$"),
    ({"nonlinearity": "relu"},
     r"^nonlinearity must be one of \('tanh', 'linear'\), got 'relu'$"),
    ({"input_scale": True}, "^input_scale must be a number >= 0, got True$"),
    ({"input_scale": "0.5"}, "^input_scale must be a number >= 0, got '0.5'$"),
])
def test_bad_arguments_are_named_exactly(kwargs, match):
    """Protects each check and its message (bools are not numbers here)."""
    args = {"rho": 1.0, "length": 5, **kwargs}
    with pytest.raises(ValueError, match=match):
        gradients.gradient_norms(args.pop("rho"), args.pop("length"), **args)


def test_smallest_arguments_are_accepted():
    """Protects the boundaries: one step, one state, no input drive (all slopes 1)."""
    curve = gradients.gradient_norms(0.5, 1, d_hidden=1, input_scale=0)
    np.testing.assert_allclose(curve.measured, [1.0, 0.5], rtol=1e-12)
    np.testing.assert_allclose(curve.predicted, [1.0, 0.5], rtol=1e-12)


def test_scaled_orthogonal_is_seeded_by_its_argument_alone():
    """Protects the seeding: the same seed gives the same W whatever the global random state,
    another seed another W, and the default seed is 0."""
    torch.manual_seed(1)
    W = gradients.scaled_orthogonal(6, 0.9, seed=3)
    torch.manual_seed(2)
    assert torch.equal(W, gradients.scaled_orthogonal(6, 0.9, seed=3))
    assert not torch.allclose(W, gradients.scaled_orthogonal(6, 0.9, seed=4))
    assert torch.equal(gradients.scaled_orthogonal(6, 0.9), gradients.scaled_orthogonal(6, 0.9,
                                                                                          seed=0))


@pytest.mark.parametrize("nonlinearity", ["tanh", "linear"])
def test_unroll_is_the_recurrence_written_out(nonlinearity):
    """Protects unroll against a loop: h_s = φ(W h_{s−1} + u_s) from h_0 = 0, φ = tanh by
    default, with the slopes φ'(a_s)."""
    W = gradients.scaled_orthogonal(4, 1.1, seed=2)
    drive = torch.randn(6, 4, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    states, slopes = gradients.unroll(W, drive, nonlinearity)
    phi = torch.tanh if nonlinearity == "tanh" else (lambda a: a)
    h = torch.zeros(4, dtype=torch.float64)
    assert torch.equal(states[0].detach(), h) and states[0].requires_grad
    for s in range(6):
        a = W @ h + drive[s]
        h = phi(a)
        torch.testing.assert_close(states[s + 1].detach(), h, rtol=1e-14, atol=0)
        want = 1 - torch.tanh(a) ** 2 if nonlinearity == "tanh" else torch.ones(4)
        torch.testing.assert_close(slopes[s], want.double(), rtol=1e-14, atol=0)
    if nonlinearity == "tanh":
        default, _ = gradients.unroll(W, drive)
        assert all(torch.equal(x, y) for x, y in zip(default, states, strict=True))
