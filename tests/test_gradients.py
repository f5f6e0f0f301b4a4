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
