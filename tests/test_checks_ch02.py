"""Chapter 2's checkers pass the book's answers, catch and name the usual mistakes, and grade
other draws of their cases."""

from __future__ import annotations

import math

import pytest
import sympy as sp
import torch

from sseq import nn as snn
from sseq.checks import ch02
from sseq.exercises import Case


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
    assert ch02.check_vanishing_horizon(135, 135)
    assert "Well done" in capsys.readouterr().out
    assert not ch02.check_vanishing_horizon(134.67, 135, verbose=False)
    report = ch02.check_vanishing_horizon(1, 135, verbose=False)
    assert not report and "135" not in str(report) and "too low" in str(report)
    assert "rounded down" in str(ch02.check_vanishing_horizon(134, 135, verbose=False))
    assert ch02.check_vanishing_horizon(..., verbose=False).unanswered
    both = ch02.check_vanishing_horizon(135, 135, verbose=False)
    assert both and both.n_cases == 2
    assert not ch02.check_vanishing_horizon(135, 200, verbose=False)
    # "Then measure it": a right prediction alone does not pass
    alone = ch02.check_vanishing_horizon(135, verbose=False)
    assert not alone and "not measured yet" in str(alone)


# --- what the learner reads, in full -------------------------------------------------------------
GRU_LINES = [  # (case name, the case's hint) of the book's cases
    ("a batch of 2 (d=3, n=4)",
     "the gates are stacked in the order (r, z, n) along the first axis of each weight."),
    ("a single sequence (b=1, d=5, n=2)",
     "x @ weight_ih.T has shape (b, 3n): split it with .chunk(3, dim=-1)."),
    ("a wider state (b=3, d=2, n=8)", "the reset gate multiplies (W_hn h + b_hn), bias included."),
    ("large pre-activations (saturated gates)",
     "h' = (1 - z) * n + z * h: z keeps the old state, 1 - z takes the new."),
    ("float64 stays float64", "do not convert the inputs; every operation keeps their dtype."),
]


def gru_zero(x, h, *weights):
    return torch.zeros_like(h)


def test_gru_report_names_every_case_and_its_hint_in_full():
    """Protects what a learner reads for Exercise 2.1: each book case's name (with its sizes),
    its hint, the tolerance (rtol 1e-5, atol 1e-6), and the verdict under the exercise's
    title."""
    lines = str(ch02.check_gru_cell(gru_zero, verbose=False)).splitlines()
    assert len(lines) == 6
    for line, (name, hint) in zip(lines, GRU_LINES, strict=False):
        assert line.startswith(f"✗ {name}: values differ at ") and line.endswith(
            f"(relative error 1.0e+00; tolerance rtol 1e-05, atol 1e-06). Hint: {hint}"), line
    assert lines[-1] == "Exercise 2.1 (GRU cell): 0 of 5 checks pass. Keep going."


def reset_bias_outside(x, h, w_ih, w_hh, b_ih, b_hh):  # r (W_hn h) + b_hn: the bias not gated
    x_r, x_z, x_n = (x @ w_ih.T + b_ih).chunk(3, -1)
    w_r, w_z, w_n = w_hh.chunk(3, 0)
    c_r, c_z, c_n = b_hh.chunk(3)
    r = torch.sigmoid(x_r + h @ w_r.T + c_r)
    z = torch.sigmoid(x_z + h @ w_z.T + c_z)
    n = torch.tanh(x_n + c_n + r * (h @ w_n.T))
    return (1 - z) * n + z * h


@pytest.mark.parametrize(("learner", "said"), [
    (reset_before_matmul, "Cho et al.'s original GRU: it applies the reset gate before the "
     "product, W_hn (r ⊙ h); PyTorch's convention (this exercise's) applies it after: "
     "r ⊙ (W_hn h + b_hn)."),
    (update_gate_swapped, "the update gate the wrong way round: h' = (1 − z) ⊙ n + z ⊙ h: z keeps "
     "the old state."),
    (gates_swapped, "the reset and update gates swapped: the gates are stacked (r, z, n): the "
     "first third is the reset gate."),
    (reset_bias_outside, "the reset gate without the bias b_hn: r multiplies W_hn h + b_hn, bias "
     "included."),
])
def test_gru_mistakes_are_explained_in_full_on_every_case(learner, said):
    """Protects each recognised mistake of Exercise 2.1: a learner's answer with that mistake
    (written independently of the checker's) is caught on every book case, whatever its sizes,
    and the mistake named and explained in full there."""
    lines = str(ch02.check_gru_cell(learner, verbose=False)).splitlines()
    assert len(lines) == 6
    for line, (name, _) in zip(lines, GRU_LINES, strict=False):
        assert line.startswith(f"✗ {name}: ") and line.endswith(f" Hint: this is {said}"), line


def test_graded_gru_cases_draw_every_size_in_their_ranges():
    """Protects the graded variants of Exercise 2.1: each book size v is redrawn in 1..2v+1 (the
    batch 2 in 1..5, d 3 in 1..7, n 4 in 1..9; d 5 in 1..11, n 2 in 1..5; b 3 in 1..7, d 2 in
    1..5), the other sizes stay (b=1; n=8; the saturated and float64 cases), the case names
    give the sizes drawn, and a seed always draws the same cases."""
    seen = [set() for _ in range(7)]
    for seed in range(1, 300):
        cases = ch02._gru_cases(seed)
        shapes = [(c.args[0].shape[0], c.args[0].shape[1], c.args[1].shape[1]) for c in cases]
        (b1, d1, h1), (b2, d2, h2), (b3, d3, h3), big, wide = shapes
        for i, size in enumerate((b1, d1, h1, d2, h2, b3, d3)):
            seen[i].add(size)
        assert (b2, h3, big, wide) == (1, 8, (4, 3, 4), (2, 3, 4))
        assert [c.name for c in cases[:3]] == [
            f"a batch of {b1} (d={d1}, n={h1})", f"a single sequence (b=1, d={d2}, n={h2})",
            f"a wider state (b={b3}, d={d3}, n=8)"]
    assert [(min(s), max(s)) for s in seen] == [(1, 5), (1, 7), (1, 9), (1, 11), (1, 5),
                                                (1, 7), (1, 5)]
    again, other = ch02._gru_cases(7), ch02._gru_cases(7)
    assert [c.name for c in again] == [c.name for c in other]
    assert all(torch.equal(a, b) for x, y in zip(again, other, strict=True)
               for a, b in zip(x.args, y.args, strict=True))


@pytest.mark.parametrize("seed", [None, 5])
def test_gru_cases_are_drawn_as_the_book_says(seed):
    """Protects the cases themselves: case i draws x, h, W_ih, W_hh, b_ih, b_hh in turn from
    the exercise's generator for seed i (the book's, or mixed with a grading seed), scaled by 4
    for the saturated case, in float32 except the float64 case; each case keeps its hint."""
    from sseq.exercises_cases import case_generator

    for i, case in enumerate(ch02._gru_cases(seed)):
        g = case_generator(i, seed)
        scale, dtype = (4.0 if i == 3 else 1.0), (torch.float64 if i == 4 else torch.float32)
        want = [(scale * torch.randn(a.shape, generator=g)).to(dtype) for a in case.args]
        assert all(a.dtype == dtype and torch.equal(a, b)
                   for a, b in zip(case.args, want, strict=True)), case.name
        assert case.hint == GRU_LINES[i][1]


def test_gru_checker_prints_by_default_passes_the_seed_on_and_uses_instructor_cases(capsys):
    """Protects check_gru_cell's calling conventions: it prints its report unless verbose=False,
    its seed selects the graded cases, and an instructor's cases replace the book's."""
    ch02.check_gru_cell(gru_right)
    assert capsys.readouterr().out == "".join(f"✓ {name}\n" for name, _ in GRU_LINES) + (
        "Exercise 2.1 (GRU cell): all 5 checks pass. Well done!\n")
    ch02.check_gru_cell(gru_zero, verbose=False)
    assert capsys.readouterr().out == ""
    graded = ch02.check_gru_cell(gru_zero, verbose=False, seed=3)
    assert [line.split(":")[0] for line in graded.lines] == [
        f"✗ {case.name}" for case in ch02._gru_cases(3)]
    assert graded.lines[0].split(":")[0] != f"✗ {GRU_LINES[0][0]}"
    mine = Case("mine", ch02._gru_cases(9)[2].args)
    report = ch02.check_gru_cell(gru_right, verbose=False, cases=[mine])
    assert report and report.lines == ["✓ mine"]


JACOBIAN_AT = "✗ ∂h_T/∂h_t: differs from the expected result (at T = 9, t = 3, w = 0.349 yours is "
GRADIENT_AT = ("✗ ∂h_3/∂w: differs from the expected result (at u = 1.378, w = 1.21, x1 = -0.318, "
               "x2 = -0.964 yours is ")
STEPS = "from h_t to h_T there are T − t steps, each a factor w."


@pytest.mark.parametrize(("jacobian", "said"), [
    (lambda w, T, t: w**T / w ** (t + 1), f"this is one factor of w too few: {STEPS}"),
    (lambda w, T, t: w ** (T + 1) / w**t, f"this is one factor of w too many: {STEPS}"),
    (lambda w, T, t: (1 / w) ** (T - t), f"this is the exponent reversed: {STEPS}"),
    (lambda w, T, t: T + t, "each step back multiplies by ∂h_s/∂h_{s-1} = w."),
])
def test_jacobian_feedback_in_full(jacobian, said):
    """Protects Exercise 2.2's feedback on ∂h_T/∂h_t: each recognised exponent mistake named
    and explained in full, the exercise's hint otherwise, at the first point of the domain
    (T in 6..11, t in 0..5, w in (0.3, 1.5)) that the checker draws; and the title."""
    w, u, T, t, x1, x2, x3 = ch02.symbols()
    lines = str(ch02.check_linear_rnn_derivatives(jacobian(w, T, t), 2 * w * u * x1 + u * x2,
                                                  verbose=False)).splitlines()
    assert lines[0].startswith(JACOBIAN_AT) and lines[0].endswith(f". Hint: {said}"), lines[0]
    assert lines[1:] == ["✓ ∂h_3/∂w", "Exercise 2.2 (derive): 1 of 2 checks pass. Keep going."]


def test_gradient_feedback_in_full():
    """Protects Exercise 2.2's feedback on ∂h_3/∂w: the immediate derivative and h_3 itself
    (in the learner's own symbols, even one the answer lacks) named and explained in full, the
    BPTT hint otherwise, at the first point the checker draws (w in (0.3, 1.5))."""
    w, u, T, t, x1, x2, x3 = ch02.symbols()
    mw, mu, mx1, mx2, mx3 = sp.symbols("w u x1 x2 x3", real=True)  # a learner's own symbols

    def lines(gradient):
        return str(ch02.check_linear_rnn_derivatives(w ** (T - t), gradient,
                                                     verbose=False)).splitlines()

    alone = lines(mu * (mw * mx1 + mx2))
    assert alone[0] == "✓ ∂h_T/∂h_t"
    assert alone[1].startswith(GRADIENT_AT) and alone[1].endswith(
        ". Hint: this is the immediate derivative h_2 alone: h_2 depends on w too: add the paths "
        "through h_2 and h_1 (the BPTT sum)."), alone[1]
    assert alone[2] == "Exercise 2.2 (derive): 1 of 2 checks pass. Keep going."
    assert lines(mu * mx3 + mw * mu * mx2 + mw**2 * mu * mx1)[1] == (
        "✗ ∂h_3/∂w: contains x3, which the answer does not depend on; eliminate it. Hint: this "
        "is h_3 itself: differentiate it with respect to w.")
    other = lines(w + u)[1]
    assert other.startswith(GRADIENT_AT) and other.endswith(
        ". Hint: BPTT: ∂h_3/∂w = Σ_t (∂h_3/∂h_t) h_{t-1} = w² h_0 + w h_1 + h_2."), other


def test_derivative_checker_prints_by_default(capsys):
    """Protects check_linear_rnn_derivatives's calling convention: one report, printed unless
    verbose=False (its two parts never print on their own)."""
    w, u, T, t, x1, x2, x3 = ch02.symbols()
    ch02.check_linear_rnn_derivatives(w ** (T - t), 2 * w * u * x1 + u * x2)
    assert capsys.readouterr().out == ("✓ ∂h_T/∂h_t\n✓ ∂h_3/∂w\n"
                                       "Exercise 2.2 (derive): all 2 checks pass. Well done!\n")
    ch02.check_linear_rnn_derivatives(w, u, verbose=False)
    assert capsys.readouterr().out == ""


HORIZON = "steps until the gradient is below 1e-3 (ρ = 0.95)"
ROUNDED = ("Hint: this is rounded down: the first k with 0.95^k < 10⁻³ is the integer just above "
           "ln(10⁻³)/ln(0.95).")


def test_vanishing_horizon_report_in_full(capsys):
    """Protects what a learner reads for Exercise 2.3: both parts named, exact (no tolerance),
    the rounding-down mistake explained in full for either, each part's own hint otherwise, the
    missing measurement asked for, the title; printed unless verbose=False."""
    def lines(*answer):
        return str(ch02.check_vanishing_horizon(*answer, verbose=False)).splitlines()

    assert lines(134, 134) == [
        f"✗ {HORIZON}: your value is too low (tolerance: exact). {ROUNDED}",
        f"✗ your measurement: your value is too low (tolerance: exact). {ROUNDED}",
        "Exercise 2.3 (predict, then measure): 0 of 2 checks pass. Keep going."]
    assert lines(136, 136)[:2] == [
        f"✗ {HORIZON}: your value is too high (tolerance: exact). Hint: solve 0.95^k < 1e-3 for "
        "the smallest integer k: k > ln(1e-3) / ln(0.95).",
        "✗ your measurement: your value is too high (tolerance: exact). Hint: the first distance "
        "where curve.measured < 1e-3."]
    assert lines(135, 135.5)[1].startswith("✗ your measurement: your value is too high")
    assert lines(135) == [
        f"✓ {HORIZON}", "✗ your measurement: not measured yet: replace the None with the first k "
        "at which gradient_norms(0.95, 200, nonlinearity='linear').measured is below 1e-3.",
        "Exercise 2.3 (predict, then measure): 1 of 2 checks pass. Keep going."]
    assert capsys.readouterr().out == ""
    ch02.check_vanishing_horizon(135, 135)
    assert capsys.readouterr().out == (f"✓ {HORIZON}\n✓ your measurement\n"
                                       "Exercise 2.3 (predict, then measure): all 2 checks pass. "
                                       "Well done!\n")


def test_vanishing_horizon_defaults_threshold_and_length():
    """Protects vanishing_horizon: by default ρ = 0.95 and 10⁻³ (135 steps); the first
    distance strictly below the threshold; a horizon beyond the default 200 steps refused,
    saying so."""
    from sseq.gradients import gradient_norms

    assert ch02.vanishing_horizon() == 135 == ch02.vanishing_horizon(0.95)
    curve = gradient_norms(0.95, 200, nonlinearity="linear")
    k = int(curve.distance[10])
    assert ch02.vanishing_horizon(0.95, float(curve.measured[10])) == k + 1
    with pytest.raises(ValueError, match=r"^the gradient stays above 0\.001 for 200 steps; use a "
                                         r"longer length$"):
        ch02.vanishing_horizon(0.97)  # 227 steps
    assert ch02.vanishing_horizon(0.97, length=250) == math.ceil(math.log(1e-3)
                                                                 / math.log(0.97))
