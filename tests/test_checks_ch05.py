"""The Chapter 5 checkers: a correct answer passes, each kind of wrong one is caught."""

from __future__ import annotations

import torch

from sseq.checks import ch05


def combine_right(first, second):
    (a1, b1), (a2, b2) = first, second
    return a2 * a1, a2 * b1 + b2


def combine_swapped(first, second):  # applies the second step first
    (a1, b1), (a2, b2) = first, second
    return a1 * a2, a1 * b2 + b1


def combine_sum(first, second):  # forgets that the later step multiplies b1
    (a1, b1), (a2, b2) = first, second
    return a1 * a2, b1 + b2


def test_combine_right_answer_passes(capsys):
    assert ch05.check_combine(combine_right)
    assert "all 5 checks pass" in capsys.readouterr().out


def test_combine_mistakes_are_caught_with_hints():
    report = ch05.check_combine(combine_swapped, verbose=False)
    assert not report and "the later step multiplies b₁" in str(report)
    report = ch05.check_combine(combine_sum, verbose=False)
    assert not report and report.lines[0].startswith("✗ two scalar steps")


def test_combine_unfinished_answer_is_reported():
    def todo(first, second):
        raise NotImplementedError

    assert "not implemented yet" in str(ch05.check_combine(todo, verbose=False))


def test_blelloch_work():
    assert ch05.check_blelloch_work(2 * 1023, verbose=False)
    assert not ch05.check_blelloch_work(2 * 999, verbose=False)  # forgot the padding
    wrong = ch05.check_blelloch_work(1000 * 10, verbose=False)  # Hillis–Steele's order
    assert not wrong and "padded to a power of two" in str(wrong)
    assert ch05.check_blelloch_work(2 * 7, l=8, verbose=False)
    assert "no answer yet" in str(ch05.check_blelloch_work(..., verbose=False))


def test_materialized_bytes():
    assert ch05.check_materialized_bytes(8 * 2048 * 1536 * 16 * 4, verbose=False)
    assert ch05.check_materialized_bytes(1.61e9, verbose=False)  # rounded is fine
    assert not ch05.check_materialized_bytes(8 * 2048 * 1536 * 16, verbose=False)  # numbers
    assert not ch05.check_materialized_bytes(1.5, verbose=False)  # GiB, not bytes


def step_right(h, u_t, dt_t, A, B_t, C_t):
    h = torch.exp(dt_t[..., None] * A) * h + (dt_t * u_t)[..., None] * B_t[:, None, :]
    return (h * C_t[:, None, :]).sum(-1), h


def step_zoh(h, u_t, dt_t, A, B_t, C_t):  # zero-order hold for B too: not Mamba's choice
    A_bar = torch.exp(dt_t[..., None] * A)
    h = A_bar * h + ((A_bar - 1) / A * u_t[..., None]) * B_t[:, None, :]
    return (h * C_t[:, None, :]).sum(-1), h


def step_read_before(h, u_t, dt_t, A, B_t, C_t):  # reads out the old state
    y = (h * C_t[:, None, :]).sum(-1)
    return y, torch.exp(dt_t[..., None] * A) * h + (dt_t * u_t)[..., None] * B_t[:, None, :]


def test_selective_step():
    assert ch05.check_selective_step(step_right, verbose=False)
    report = ch05.check_selective_step(step_zoh, verbose=False)
    assert not report and "Euler" in str(report)
    report = ch05.check_selective_step(step_read_before, verbose=False)
    assert not report and "read out after the update" in str(report)
