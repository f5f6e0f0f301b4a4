"""Chapter 2's checkers pass the book's answers, catch and name the usual mistakes, and grade
other draws of their cases."""

from __future__ import annotations

import math

import pytest
import sympy as sp
import torch

from sseq import nn as snn
from sseq.checks import ch02


def gru_right(x, h, w_ih, w_hh, b_ih, b_hh):  # oracle: torch.nn.GRUCell's own kernel
    cell = torch.nn.GRUCell(x.shape[1], h.shape[1], dtype=x.dtype)
    with torch.no_grad():
        for p, v in zip((cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh),
                        (w_ih, w_hh, b_ih, b_hh), strict=True):
            p.copy_(v)
        return cell(x, h)


def reset_before_matmul(x, h, w_ih, w_hh, b_ih, b_hh):  # Cho et al.'s original placement
    x_r, x_z, x_n = (x @ w_ih.T + b_ih).chunk(3, -1)
    w_r, w_z, w_n = w_hh.chunk(3, 0)
    c_r, c_z, c_n = b_hh.chunk(3)
    r = torch.sigmoid(x_r + h @ w_r.T + c_r)
    z = torch.sigmoid(x_z + h @ w_z.T + c_z)
    n = torch.tanh(x_n + (r * h) @ w_n.T + c_n)
    return (1 - z) * n + z * h


def update_gate_swapped(x, h, w_ih, w_hh, b_ih, b_hh):  # h' = z n + (1 - z) h
    x_r, x_z, x_n = (x @ w_ih.T + b_ih).chunk(3, -1)
    h_r, h_z, h_n = (h @ w_hh.T + b_hh).chunk(3, -1)
    r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
    return z * torch.tanh(x_n + r * h_n) + (1 - z) * h


def gates_swapped(x, h, w_ih, w_hh, b_ih, b_hh):  # reads the stack as (z, r, n)
    x_z, x_r, x_n = (x @ w_ih.T + b_ih).chunk(3, -1)
    h_z, h_r, h_n = (h @ w_hh.T + b_hh).chunk(3, -1)
    r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
    return (1 - z) * torch.tanh(x_n + r * h_n) + z * h


def test_gru_cell_checker_passes_a_right_answer_on_book_and_graded_cases():
    assert ch02.check_gru_cell(gru_right, verbose=False)
    for seed in (1, 2):
        assert ch02.check_gru_cell(gru_right, verbose=False, seed=seed)
    book, graded = ch02._gru_cases(), ch02._gru_cases(seed=3)
    assert not any(torch.equal(a.args[0], b.args[0]) for a, b in zip(book, graded, strict=True))


@pytest.mark.parametrize(("wrong", "named"), [
    (reset_before_matmul, "Cho et al.'s original GRU"),
    (update_gate_swapped, "the update gate the wrong way round"),
    (gates_swapped, "the reset and update gates swapped"),
])
def test_gru_mistakes_are_named(wrong, named):
    report = ch02.check_gru_cell(wrong, verbose=False)
    assert not report and f"Hint: this is {named}" in str(report)


def test_gru_other_failures():
    def in_float32(*args):
        return gru_right(*(a.float() for a in args)).to(args[0].dtype)

    def crashes(*args):
        raise RuntimeError("shapes do not match")

    assert "computed in float32" in str(ch02.check_gru_cell(in_float32, verbose=False))
    assert "raised RuntimeError" in str(ch02.check_gru_cell(crashes, verbose=False))
    report = ch02.check_gru_cell(snn.gru_cell, verbose=False)
    assert not report and "calls sseq.nn.gru_cell, the book's own implementation" in str(report)


def test_gru_tolerance_just_inside_and_just_outside():
    def scaled(factor):
        return lambda *a: gru_right(*a) * factor

    assert ch02.check_gru_cell(scaled(1 + 3e-6), verbose=False)
    assert not ch02.check_gru_cell(scaled(1 + 3e-5), verbose=False)


def test_derivative_checker_accepts_equivalent_forms():
    w, u, T, t, x1, x2, x3 = ch02.symbols()
    assert ch02.check_linear_rnn_derivatives(w**T / w**t, u * x2 + 2 * w * u * x1,
                                             verbose=False)
    mine = sp.symbols("w u T t x1 x2", positive=True)
    assert ch02.check_linear_rnn_derivatives(sp.exp((mine[2] - mine[3]) * sp.log(mine[0])),
                                             1.0 * mine[1] * mine[4] * mine[0] * 2.0
                                             + mine[1] * mine[5], verbose=False)


def test_derivative_checker_names_the_mistakes_and_gives_nothing_away():
    w, u, T, t, x1, x2, x3 = ch02.symbols()
    report = ch02.check_linear_rnn_derivatives(w ** (T - t - 1), w * u * x1 + u * x2,
                                               verbose=False)
    assert report.n_cases == 2 and report.n_passed == 0
    assert "one factor of w too few" in str(report)
    assert "the immediate derivative h_2 alone" in str(report)
    assert "2*u*w*x1" not in str(report) and "w**(T - t)" not in str(report)
    unanswered = ch02.check_linear_rnn_derivatives(..., ..., verbose=False)
    assert not unanswered and unanswered.unanswered


def test_vanishing_horizon_is_measured_and_checked(capsys):
    # The measurement agrees with the closed form: the smallest k with 0.95^k < 1e-3.
    assert ch02.vanishing_horizon(0.95, 1e-3) == math.ceil(math.log(1e-3) / math.log(0.95))
    assert ch02.check_vanishing_horizon(135)
    assert "Well done" in capsys.readouterr().out
    assert not ch02.check_vanishing_horizon(134.67, verbose=False)
    report = ch02.check_vanishing_horizon(1, verbose=False)
    assert not report and "135" not in str(report) and "too low" in str(report)
    assert "rounded down" in str(ch02.check_vanishing_horizon(134, verbose=False))
    assert ch02.check_vanishing_horizon(..., verbose=False).unanswered
    both = ch02.check_vanishing_horizon(135, 135, verbose=False)
    assert both and both.n_cases == 2
    assert not ch02.check_vanishing_horizon(135, 200, verbose=False)
