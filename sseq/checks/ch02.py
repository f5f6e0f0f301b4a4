"""Checkers for Chapter 2, "Recurrent networks: carrying a state"."""

from __future__ import annotations

import numpy as np
import sympy as sp
import torch

from sseq.exercises import Case, Report, check_expression, check_function, check_value
from sseq.gradients import gradient_norms
from sseq.nn import gru_cell

__all__ = ["check_gru_cell", "check_linear_rnn_derivatives", "check_vanishing_horizon",
           "symbols", "vanishing_horizon"]


# --- Exercise 2.1: one step of the GRU ---------------------------------------------------------


def _gru_case(name, b, d, h, *, scale=1.0, dtype=torch.float32, hint="", seed=0):
    g = torch.Generator().manual_seed(seed)

    def draw(*shape):
        return (scale * torch.randn(*shape, generator=g)).to(dtype)

    args = (draw(b, d), draw(b, h), draw(3 * h, d), draw(3 * h, h), draw(3 * h), draw(3 * h))
    return Case(name, args, hint=hint)


def check_gru_cell(fn, *, verbose: bool = True) -> Report:
    """Exercise 2.1: ``fn(x, h, weight_ih, weight_hh, bias_ih, bias_hh) -> h'`` (PyTorch's GRU)."""
    order = "the gates are stacked in the order (r, z, n) along the first axis of each weight."
    cases = [
        _gru_case("a batch of 2 (d=3, h=4)", 2, 3, 4, hint=order),
        _gru_case("a single sequence (b=1, d=5, h=2)", 1, 5, 2, seed=1,
                  hint="x @ weight_ih.T has shape (b, 3h): split it with .chunk(3, dim=-1)."),
        _gru_case("a wider state (b=3, d=2, h=8)", 3, 2, 8, seed=2,
                  hint="the reset gate multiplies (W_hn h + b_hn), bias included."),
        _gru_case("large pre-activations (saturated gates)", 4, 3, 4, scale=4.0, seed=3,
                  hint="h' = (1 - z) * n + z * h: z keeps the old state, 1 - z takes the new."),
        _gru_case("float64 stays float64", 2, 3, 4, dtype=torch.float64, seed=4,
                  hint="do not convert the inputs; every operation keeps their dtype."),
    ]
    return check_function(fn, gru_cell, cases, title="Exercise 2.1 (GRU cell)",
                          rtol=1e-5, atol=1e-6, verbose=verbose)


# --- Exercise 2.2: derive the gradients of a scalar linear RNN ---------------------------------


def symbols():
    """The sympy symbols of Exercise 2.2: w, u, T, t, x1, x2, x3."""
    return sp.symbols("w u T t x1 x2 x3")


def check_linear_rnn_derivatives(jacobian, gradient, *, verbose: bool = True) -> Report:
    """Exercise 2.2: for h_t = w h_{t-1} + u x_t, ∂h_T/∂h_t and, with h_0 = 0, ∂h_3/∂w."""
    w, u, T, t, x1, x2, x3 = symbols()
    title = "Exercise 2.2 (derive)"
    parts = [
        check_expression("∂h_T/∂h_t", jacobian, w ** (T - t), title=title, verbose=False,
                         hint="each step back multiplies by ∂h_s/∂h_{s-1} = w."),
        check_expression("∂h_3/∂w", gradient, 2 * w * u * x1 + u * x2, title=title,
                         verbose=False,
                         hint="BPTT: ∂h_3/∂w = Σ_t (∂h_3/∂h_t) h_{t-1} = w² h_0 + w h_1 + h_2."),
    ]
    report = Report(title)
    for part in parts:
        report.lines += part.lines
        report.n_passed += part.n_passed
        report.n_cases += part.n_cases
    return report.show() if verbose else report


# --- Exercise 2.3: predict, then measure, how fast the gradient vanishes ----------------------


def vanishing_horizon(rho: float = 0.95, threshold: float = 1e-3, length: int = 200) -> int:
    """The first distance k at which the linear RNN's ‖∂h_T/∂h_{T-k}‖ drops below ``threshold``.

    Measured with autograd (``sseq.gradients.gradient_norms``), not computed from ρ^k.
    """
    curve = gradient_norms(rho, length, nonlinearity="linear")
    below = np.flatnonzero(curve.measured < threshold)
    if len(below) == 0:
        raise ValueError(f"the gradient stays above {threshold} for {length} steps; "
                         "use a longer length")
    return int(curve.distance[below[0]])


def check_vanishing_horizon(prediction, *, verbose: bool = True) -> Report:
    """Exercise 2.3: after how many steps does ‖∂h_T/∂h_t‖ fall below 10⁻³ when ρ = 0.95?"""
    return check_value("steps until the gradient is below 1e-3 (ρ = 0.95)", prediction,
                       vanishing_horizon(0.95, 1e-3), rtol=0.0, atol=0.0,
                       title="Exercise 2.3 (predict, then measure)",
                       hint="solve 0.95^k < 1e-3 for the smallest integer k: "
                            "k > ln(1e-3) / ln(0.95).", verbose=verbose)
