"""Chapter 2's checkers pass the book's answers and catch the usual mistakes."""

from __future__ import annotations

import math

import torch

from sseq import nn as snn
from sseq.checks import ch02


def test_gru_cell_checker_passes_the_reference_and_catches_mistakes():
    assert ch02.check_gru_cell(snn.gru_cell, verbose=False)

    def update_gate_swapped(x, h, w_ih, w_hh, b_ih, b_hh):  # h' = z n + (1 - z) h
        x_r, x_z, x_n = (x @ w_ih.T + b_ih).chunk(3, -1)
        h_r, h_z, h_n = (h @ w_hh.T + b_hh).chunk(3, -1)
        r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
        return z * torch.tanh(x_n + r * h_n) + (1 - z) * h

    def reset_before_matmul(x, h, w_ih, w_hh, b_ih, b_hh):  # Cho et al.'s original placement
        x_r, x_z, x_n = (x @ w_ih.T + b_ih).chunk(3, -1)
        w_r, w_z, w_n = w_hh.chunk(3, 0)
        c_r, c_z, c_n = b_hh.chunk(3)
        r = torch.sigmoid(x_r + h @ w_r.T + c_r)
        z = torch.sigmoid(x_z + h @ w_z.T + c_z)
        n = torch.tanh(x_n + (r * h) @ w_n.T + c_n)
        return (1 - z) * n + z * h

    def in_float32(*args):
        return snn.gru_cell(*(a.float() for a in args))

    def crashes(*args):
        raise RuntimeError("shapes do not match")

    for wrong in (update_gate_swapped, reset_before_matmul, in_float32, crashes):
        report = ch02.check_gru_cell(wrong, verbose=False)
        assert not report, wrong.__name__
    assert "dtype differs" in str(ch02.check_gru_cell(in_float32, verbose=False))
    assert "raised RuntimeError" in str(ch02.check_gru_cell(crashes, verbose=False))


def test_derivative_checker_accepts_equivalent_forms_and_catches_off_by_one():
    w, u, T, t, x1, x2, x3 = ch02.symbols()
    assert ch02.check_linear_rnn_derivatives(w**T / w**t, u * x2 + 2 * w * u * x1,
                                             verbose=False)
    report = ch02.check_linear_rnn_derivatives(w ** (T - t - 1), w * u * x1 + u * x2,
                                               verbose=False)
    assert report.n_cases == 2 and report.n_passed == 0
    assert "differs from the expected result" in str(report)
    unanswered = ch02.check_linear_rnn_derivatives(..., ..., verbose=False)
    assert not unanswered and "no answer yet" in str(unanswered)


def test_vanishing_horizon_is_measured_and_checked(capsys):
    # The measurement agrees with the closed form: the smallest k with 0.95^k < 1e-3.
    assert ch02.vanishing_horizon(0.95, 1e-3) == math.ceil(math.log(1e-3) / math.log(0.95))
    assert ch02.check_vanishing_horizon(135)
    assert "Well done" in capsys.readouterr().out
    assert not ch02.check_vanishing_horizon(134.67, verbose=False)
    assert not ch02.check_vanishing_horizon(..., verbose=False)
