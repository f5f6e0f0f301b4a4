"""The Chapter 4 checkers: a correct answer passes, each kind of wrong one is caught."""

from __future__ import annotations

import math

import pytest
import sympy as sp
import torch

from sseq.checks import ch04


def zoh_right(A, B, dt):
    dtA = dt * A
    phi = torch.where(A == 0, dt * torch.ones_like(A), torch.expm1(dtA) / torch.where(A == 0, 1, A))
    return torch.exp(dtA), phi * B


def zoh_naive(A, B, dt):  # exp(x) - 1 and no A = 0 limit
    return torch.exp(dt * A), (torch.exp(dt * A) - 1) / A * B


def zoh_euler(A, B, dt):  # the wrong rule
    return 1 + dt * A, dt * B


def kernel_right(A_bar, B_bar, C, L):
    k = torch.arange(1, L, dtype=torch.float64)
    V = A_bar.unsqueeze(-1) ** k  # (..., n, L - 1)
    V = torch.cat([torch.ones_like(A_bar).unsqueeze(-1), V], dim=-1)  # λ^0 = 1, also for λ = 0
    return torch.einsum("...n,...nl->...l", C * B_bar, V)


def kernel_log(A_bar, B_bar, C, L):  # exp(k log λ) without the k = 0 care
    k = torch.arange(L, dtype=torch.float64)
    V = torch.exp(torch.log(A_bar).unsqueeze(-1) * k)
    return torch.einsum("...n,...nl->...l", C * B_bar, V)


def kernel_1d(A_bar, B_bar, C, L):  # sums over everything: no channels
    k = torch.arange(L, dtype=torch.float64)
    return ((C * B_bar).reshape(-1, 1) * A_bar.reshape(-1, 1) ** k).sum(0)


def test_zoh_right_answer_passes(capsys):
    assert ch04.check_zoh_diagonal(zoh_right)
    assert "all 5 checks pass" in capsys.readouterr().out


def test_zoh_right_answer_passes_graded_cases_too():
    for seed in (1, 2):
        assert ch04.check_zoh_diagonal(zoh_right, verbose=False, seed=seed)
    book, graded = ch04._zoh_cases(), ch04._zoh_cases(seed=1)
    assert not torch.equal(book[0].args[0], graded[0].args[0])
    assert not torch.equal(book[2].args[2], graded[2].args[2])


def test_zoh_tolerance_just_inside_and_just_outside():
    def scaled(factor):
        return lambda A, B, dt: tuple(m * factor for m in zoh_right(A, B, dt))

    assert ch04.check_zoh_diagonal(scaled(1 + 3e-10), verbose=False)
    assert not ch04.check_zoh_diagonal(scaled(1 + 3e-9), verbose=False)


def test_zoh_naive_answer_fails_on_the_edge_cases(capsys):
    report = ch04.check_zoh_diagonal(zoh_naive)
    out = capsys.readouterr().out
    assert not report and report.n_passed == 3
    assert "✗ A with a zero entry (an integrator): item 1: 1 of 2 entries are NaN" in out
    assert "Hint: this is (e^{ΔA} − 1)/A computed as written" in out
    assert "✗ tiny A (precision): item 1: values differ" in out and "torch.expm1" in out


def test_zoh_simplified_B_and_the_reference_are_named():
    report = ch04.check_zoh_diagonal(lambda A, B, dt: (torch.exp(dt * A), dt * B),
                                     verbose=False)
    assert "the simplified B_bar = ΔB" in str(report)
    from sseq import discretize

    report = ch04.check_zoh_diagonal(lambda A, B, dt: discretize.zoh(A, B, dt), verbose=False)
    assert not report and "calls sseq.discretize.zoh" in str(report)


def test_zoh_wrong_rule_is_caught():
    report = ch04.check_zoh_diagonal(zoh_euler, verbose=False)
    assert not report and all(line.startswith("✗") for line in report.lines[:4])
    assert "item 0: values differ" in report.lines[0] and "Euler's rule" in report.lines[0]


def test_zoh_unfinished_answer_is_reported(capsys):
    def todo(A, B, dt):
        raise NotImplementedError

    assert not ch04.check_zoh_diagonal(todo)
    assert "not implemented yet" in capsys.readouterr().out


def kernel_loop(A_bar, B_bar, C, L):  # right, but a Python loop over k
    columns, power = [], torch.ones_like(A_bar)
    for _ in range(L):
        columns.append((C * B_bar * power).sum(-1))
        power = power * A_bar
    return torch.stack(columns, -1)


def test_kernel_right_answer_passes():
    assert ch04.check_kernel(kernel_right, verbose=False)
    for seed in (1, 2):
        assert ch04.check_kernel(kernel_right, verbose=False, seed=seed)


def test_kernel_no_loop_over_k():
    report = ch04.check_kernel(kernel_loop, verbose=False)
    assert report.n_passed == 4
    assert report.lines[-1].startswith("✗ a long memory, |λ| = 0.999 and L = 2000: ran more "
                                       "than 200 lines of your Python")


def test_kernel_tolerance_just_inside_and_just_outside():
    assert ch04.check_kernel(lambda *a: kernel_right(*a) * (1 + 3e-8), verbose=False)
    assert not ch04.check_kernel(lambda *a: kernel_right(*a) * (1 + 3e-7), verbose=False)


def test_kernel_mistakes_are_caught_with_hints():
    report = ch04.check_kernel(kernel_log, verbose=False)
    assert not report and "✗ an eigenvalue equal to 0" in str(report)
    assert "Hint: this is λ^k as exp(k log λ)" in str(report)
    no_c = ch04.check_kernel(lambda A_bar, B_bar, C, L: kernel_right(A_bar, B_bar,
                                                                    torch.ones_like(C), L),
                             verbose=False)
    assert "the kernel without C" in str(no_c)
    report = ch04.check_kernel(kernel_1d, verbose=False)
    line = next(ln for ln in report.lines if "one SSM per channel" in ln)
    assert line.startswith("✗") and "shape differs: expected (3, 20), got (20,)" in line


def test_bilinear_derivation():
    a, dt = ch04.symbols()
    assert ch04.check_bilinear_scalar((2 + a * dt) / (2 - a * dt), verbose=False)
    wrong = ch04.check_bilinear_scalar(1 + a * dt, verbose=False)  # Euler's
    assert not wrong and "differs from the expected result" in str(wrong)
    assert "Hint: this is Euler's (forward) rule" in str(wrong)
    assert "upside down" in str(ch04.check_bilinear_scalar((2 - a * dt) / (2 + a * dt),
                                                           verbose=False))
    mine_a, mine_dt = sp.Symbol("a", real=True), sp.Symbol("Delta", positive=True)
    assert ch04.check_bilinear_scalar((1.0 + 0.5 * mine_dt * mine_a) / (1 - mine_dt * mine_a / 2),
                                      verbose=False)
    x_prev, x_next = sp.symbols("x_prev x_next")
    leftover = ch04.check_bilinear_scalar(x_next / x_prev, verbose=False)
    assert "contains x_next, x_prev" in str(leftover)
    assert "no answer yet" in str(ch04.check_bilinear_scalar(..., verbose=False))


def test_decay_length_is_measured_and_checked():
    assert ch04.decay_length(-0.5 + 3j * math.pi, 0.05) == pytest.approx(40.0, rel=1e-9)
    assert ch04.decay_length(-2.0, 0.01) == pytest.approx(50.0, rel=1e-9)
    assert ch04.check_decay_length(40, verbose=False)
    wrong = ch04.check_decay_length(1 / (0.05 * math.hypot(0.5, 3 * math.pi)), verbose=False)
    assert not wrong and "Re A" in str(wrong) and "Hint: this is 1/(Δ|A|)" in str(wrong)
    assert "40" not in str(wrong)
    assert ch04.check_decay_length(40 * 1.019, verbose=False)
    assert not ch04.check_decay_length(40 * 1.021, verbose=False)
    assert "no answer yet" in str(ch04.check_decay_length(..., verbose=False))
