"""Checkers for Chapter 2, "Recurrent networks: carrying a state".

Each checker takes ``seed=`` (another draw of the hidden cases, for grading) or ``cases=``
(an instructor's own) where its cases are random; the book's cases are the default.
"""

from __future__ import annotations

import random

import numpy as np
import sympy as sp
import torch

from sseq.exercises import (
    Case,
    Mistake,
    Report,
    active_seed,
    case_generator,
    check_expression,
    check_function,
    check_value,
)
from sseq.gradients import gradient_norms
from sseq.nn import gru_cell

__all__ = ["check_gru_cell", "check_linear_rnn_derivatives", "check_vanishing_horizon",
           "symbols", "vanishing_horizon"]


# --- Exercise 2.1: one step of the GRU ----------------------------------------------------------


def _gru_case(name, b, d, h, *, scale=1.0, dtype=torch.float32, hint="", seed=0, grading=None):
    g = case_generator(seed, grading)

    def draw(*shape):
        return (scale * torch.randn(*shape, generator=g)).to(dtype)

    args = (draw(b, d), draw(b, h), draw(3 * h, d), draw(3 * h, h), draw(3 * h), draw(3 * h))
    return Case(name, args, hint=hint)


def _gru_cases(seed: int | None = None) -> list[Case]:
    sizes = random.Random(active_seed(seed)) if active_seed(seed) is not None else None

    def pick(*book):
        return book if sizes is None else tuple(sizes.randint(1, 2 * v + 1) for v in book)

    order = "the gates are stacked in the order (r, z, n) along the first axis of each weight."
    b1, d1, h1 = pick(2, 3, 4)
    d2, h2 = pick(5, 2)
    b3, d3 = pick(3, 2)
    return [
        _gru_case(f"a batch of {b1} (d={d1}, h={h1})", b1, d1, h1, hint=order, grading=seed),
        _gru_case(f"a single sequence (b=1, d={d2}, h={h2})", 1, d2, h2, seed=1, grading=seed,
                  hint="x @ weight_ih.T has shape (b, 3h): split it with .chunk(3, dim=-1)."),
        _gru_case(f"a wider state (b={b3}, d={d3}, h=8)", b3, d3, 8, seed=2, grading=seed,
                  hint="the reset gate multiplies (W_hn h + b_hn), bias included."),
        _gru_case("large pre-activations (saturated gates)", 4, 3, 4, scale=4.0, seed=3,
                  grading=seed,
                  hint="h' = (1 - z) * n + z * h: z keeps the old state, 1 - z takes the new."),
        _gru_case("float64 stays float64", 2, 3, 4, dtype=torch.float64, seed=4, grading=seed,
                  hint="do not convert the inputs; every operation keeps their dtype."),
    ]


def _gates(x, h, w_ih, w_hh, b_ih, b_hh):
    return (x @ w_ih.T + b_ih).chunk(3, -1), (h @ w_hh.T + b_hh).chunk(3, -1)


def _cho(x, h, w_ih, w_hh, b_ih, b_hh):
    (x_r, x_z, x_n), (h_r, h_z, _) = _gates(x, h, w_ih, w_hh, b_ih, b_hh)
    r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + (r * h) @ w_hh.chunk(3, 0)[2].T + b_hh.chunk(3)[2])
    return (1 - z) * n + z * h


def _update_swapped(x, h, w_ih, w_hh, b_ih, b_hh):
    (x_r, x_z, x_n), (h_r, h_z, h_n) = _gates(x, h, w_ih, w_hh, b_ih, b_hh)
    r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
    return z * torch.tanh(x_n + r * h_n) + (1 - z) * h


def _gates_transposed(x, h, w_ih, w_hh, b_ih, b_hh):
    (x_z, x_r, x_n), (h_z, h_r, h_n) = _gates(x, h, w_ih, w_hh, b_ih, b_hh)
    r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
    return (1 - z) * torch.tanh(x_n + r * h_n) + z * h


def _reset_without_bias(x, h, w_ih, w_hh, b_ih, b_hh):
    (x_r, x_z, x_n), (h_r, h_z, h_n) = _gates(x, h, w_ih, w_hh, b_ih, b_hh)
    r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
    b_hn = b_hh.chunk(3)[2]
    return (1 - z) * torch.tanh(x_n + r * (h_n - b_hn) + b_hn) + z * h


GRU_MISTAKES = (
    Mistake("Cho et al.'s original GRU", "it applies the reset gate before the product, "
            "W_hn (r ⊙ h); PyTorch's convention (this exercise's) applies it after: "
            "r ⊙ (W_hn h + b_hn).", _cho),
    Mistake("the update gate the wrong way round", "h' = (1 − z) ⊙ n + z ⊙ h: z keeps the "
            "old state.", _update_swapped),
    Mistake("the reset and update gates swapped", "the gates are stacked (r, z, n): the first "
            "third is the reset gate.", _gates_transposed),
    Mistake("the reset gate without the bias b_hn", "r multiplies W_hn h + b_hn, bias "
            "included.", _reset_without_bias),
)


def check_gru_cell(fn, *, verbose: bool = True, seed: int | None = None,
                   cases: list[Case] | None = None) -> Report:
    """Exercise 2.1: ``fn(x, h, weight_ih, weight_hh, bias_ih, bias_hh) -> h'`` (PyTorch's GRU)."""
    return check_function(fn, gru_cell, _gru_cases(seed) if cases is None else cases,
                          title="Exercise 2.1 (GRU cell)", rtol=1e-5, atol=1e-6,
                          mistakes=GRU_MISTAKES, verbose=verbose)


# --- Exercise 2.2: derive the gradients of a scalar linear RNN ----------------------------------


def symbols():
    """The sympy symbols of Exercise 2.2: w, u, T, t, x1, x2, x3."""
    return sp.symbols("w u T t x1 x2 x3")


def check_linear_rnn_derivatives(jacobian, gradient, *, verbose: bool = True) -> Report:
    """Exercise 2.2: for h_t = w h_{t-1} + u x_t, ∂h_T/∂h_t and, with h_0 = 0, ∂h_3/∂w."""
    w, u, T, t, x1, x2, x3 = all_symbols = symbols()
    domain = {w: (0.3, 1.5), T: range(6, 12), t: range(0, 6)}
    title = "Exercise 2.2 (derive)"
    steps = "from h_t to h_T there are T − t steps, each a factor w."
    h2 = w * u * x1 + u * x2
    report = Report(title)
    report.extend(check_expression(
        "∂h_T/∂h_t", jacobian, w ** (T - t), title=title, verbose=False, symbols=all_symbols,
        domain=domain, hint="each step back multiplies by ∂h_s/∂h_{s-1} = w.",
        mistakes=(Mistake("one factor of w too few", steps, w ** (T - t - 1)),
                  Mistake("one factor of w too many", steps, w ** (T - t + 1)),
                  Mistake("the exponent reversed", steps, w ** (t - T)))))
    report.extend(check_expression(
        "∂h_3/∂w", gradient, 2 * w * u * x1 + u * x2, title=title, verbose=False,
        symbols=all_symbols, domain=domain,
        hint="BPTT: ∂h_3/∂w = Σ_t (∂h_3/∂h_t) h_{t-1} = w² h_0 + w h_1 + h_2.",
        mistakes=(Mistake("the immediate derivative h_2 alone", "h_2 depends on w too: add "
                          "the paths through h_2 and h_1 (the BPTT sum).", h2),
                  Mistake("h_3 itself", "differentiate it with respect to w.",
                          w * h2 + u * x3))))
    return report.show() if verbose else report


# --- Exercise 2.3: predict, then measure, how fast the gradient vanishes ------------------------


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


def check_vanishing_horizon(prediction, measured=None, *, verbose: bool = True) -> Report:
    """Exercise 2.3: after how many steps does ‖∂h_T/∂h_t‖ fall below 10⁻³ when ρ = 0.95?

    Checks the prediction against the measured horizon and, when given, the learner's own
    measurement (the first k where ``gradient_norms(0.95, 200, nonlinearity="linear")``'s
    measured norm is below 10⁻³).
    """
    title = "Exercise 2.3 (predict, then measure)"
    horizon = vanishing_horizon(0.95, 1e-3)
    rounding = (Mistake("rounded down", "the first k with 0.95^k < 10⁻³ is the integer just "
                        "above ln(10⁻³)/ln(0.95).", horizon - 1),)
    report = check_value("steps until the gradient is below 1e-3 (ρ = 0.95)", prediction,
                         horizon, rtol=0.0, atol=0.0, title=title, mistakes=rounding,
                         hint="solve 0.95^k < 1e-3 for the smallest integer k: "
                              "k > ln(1e-3) / ln(0.95).", verbose=False)
    if measured is not None:
        report.extend(check_value("your measurement", measured, horizon, rtol=0.0, atol=0.0,
                                  title=title, mistakes=rounding, verbose=False,
                                  hint="the first distance where curve.measured < 1e-3."))
    return report.show() if verbose else report
