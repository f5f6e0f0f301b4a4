"""The diagrams draw what their captions say, without a browser, with a title for alt text."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from sseq import diagrams, viz  # noqa: E402


def texts(ax):
    return [t.get_text() for t in ax.texts]


@pytest.mark.parametrize(("draw", "title", "expected"), [
    (diagrams.unrolled_rnn, "The RNN, folded and unrolled in time",
     ["$x_t$", "$h_t$", "$h_0$", "$x_1$", "$h_3$", "$W$", "$U$"]),
    (diagrams.lstm_cell, "The LSTM cell",
     ["$c_{t-1}$", "$c_t$", "$h_t$", "$f_t$", "$i_t$", "$g_t$", "$o_t$", r"$\tanh$", "+"]),
    (diagrams.gru_cell, "The GRU cell",
     ["$h_{t-1}$", "$h_t$", "$z_t$", "$r_t$", r"$\tilde h_t$", "$W_{hn}$", "1−"]),
    (diagrams.ssm_block, "A state space model as a block diagram",
     ["$u(t)$", "$x(t)$", "$y(t)$", "$A$", "$B$", "$C$", "$D$", r"$\int dt$"]),
])
def test_each_diagram_draws_its_parts(draw, title, expected):
    fig, ax = plt.subplots()
    assert draw(ax) is ax
    assert ax.get_title() == title and not ax.axison
    assert set(expected) <= set(texts(ax))
    assert viz.figure_alt_text(fig) == title + "."
    plt.close(fig)


def test_the_lstm_has_three_sigmoid_gates_and_the_gru_two():
    fig, (a, b) = plt.subplots(1, 2)
    assert texts(diagrams.lstm_cell(a)).count(r"$\sigma$") == 3
    assert texts(diagrams.gru_cell(b)).count(r"$\sigma$") == 2
    plt.close(fig)


def test_the_discrete_block_diagram_has_a_delay_and_discrete_matrices():
    fig, ax = plt.subplots()
    found = texts(diagrams.ssm_block(ax, discrete=True))
    assert {r"$z^{-1}$", r"$\bar A$", r"$\bar B$", "$u_k$", "$y_k$"} <= set(found)
    assert r"$\int dt$" not in found
    plt.close(fig)
