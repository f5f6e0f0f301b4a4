"""The Chapter 8 checkers: a correct answer passes, each kind of wrong one is caught, and the
references agree with independent oracles."""

from __future__ import annotations

import math

import torch

from sseq import models, recall_tasks
from sseq.checks import ch08


def test_mqar_reference_agrees_with_the_generator():
    for seed in range(3):
        inputs, targets = recall_tasks.mqar(20, 40, 5, vocab_size=32, seed=seed)
        assert torch.equal(ch08.mqar_targets(inputs, 5), targets)


def mqar_loop(inputs, n_pairs):  # a learner's answer, written as a loop
    targets = torch.full_like(inputs, -100)
    for i, row in enumerate(inputs.tolist()):
        pair = dict(zip(row[0:2 * n_pairs:2], row[1:2 * n_pairs:2], strict=True))
        for t in range(2 * n_pairs, len(row)):
            if row[t] in pair:
                targets[i, t] = pair[row[t]]
    return targets


def test_mqar_checker(capsys):
    assert ch08.check_mqar_targets(mqar_loop)
    assert "all 4 checks pass" in capsys.readouterr().out
    assert ch08.check_mqar_targets(mqar_loop, seed=3, verbose=False)

    def late(inputs, n_pairs):
        t = mqar_loop(inputs, n_pairs)
        return torch.cat([torch.full_like(t[:, :1], -100), t[:, :-1]], 1)

    def with_pairs(inputs, n_pairs):
        t = mqar_loop(inputs, n_pairs)
        t[:, 0:2 * n_pairs:2] = inputs[:, 1:2 * n_pairs:2]
        return t

    report = ch08.check_mqar_targets(late, verbose=False)
    assert not report and "one position late" in str(report)
    report = ch08.check_mqar_targets(with_pairs, verbose=False)
    assert not report and "inside the pairs" in str(report)


def test_copy_ceiling_matches_counting_strings():
    from fractions import Fraction

    for bits, length, n in [(16, 2, 26), (16, 4, 26), (10, 3, 4), (7, 2, 3), (3000, 600, 26)]:
        exact = min(Fraction(1), Fraction(2 ** bits, n ** length))  # the oracle: exact integers
        got = ch08.copy_ceiling(bits, length, n)
        assert math.isclose(got, float(exact), rel_tol=1e-9, abs_tol=1e-300)


def ceiling_logs(bits, length, n):  # a learner's answer, in log space
    return math.exp(min(0.0, math.log(2) * bits - length * math.log(n)))


def test_copy_ceiling_checker():
    assert ch08.check_copy_ceiling(ceiling_logs, verbose=False)
    assert ch08.check_copy_ceiling(ceiling_logs, seed=5, verbose=False)
    no_cap = ch08.check_copy_ceiling(lambda b, l, n: 2.0 ** (b - l * math.log2(n)),
                                     verbose=False)
    assert not no_cap and "cap at 1" in str(no_cap)
    naive = ch08.check_copy_ceiling(lambda b, l, n: min(1.0, 2 ** b / n ** l), verbose=False)
    assert not naive  # overflows on the long case


def test_hybrid_layers_checker():
    assert ch08.hybrid_layers(8, 4) == ["mamba"] * 3 + ["attention"] + ["mamba"] * 3 + [
        "attention"]
    def mine(n, every):
        kinds = ["mamba"] * n
        for i in range(every - 1, n, every):
            kinds[i] = "attention"
        return kinds

    assert ch08.check_hybrid_layers(mine, verbose=False)
    assert ch08.check_hybrid_layers(mine, seed=2, verbose=False)
    zero = ch08.check_hybrid_layers(ch08._zero_based, verbose=False)
    assert not zero and "counted from 0" in str(zero)


def test_hybrid_state_checker():
    # by hand: 2 attention layers keep 2 · t · d; 6 Mamba layers keep d_inner · (N + 3)
    right = 2 * 2 * 1000 * 32 + 6 * 64 * (8 + 3)
    assert ch08.check_hybrid_state(right, verbose=False)
    assert models.state_numbers(models.build(ch08.hybrid_layers(8, 4), 30, d_model=32,
                                             d_state=8), 1000) == right
    keys_only = ch08.check_hybrid_state(right - 64_000, verbose=False)
    assert not keys_only and "keys only" in str(keys_only)
    assert not ch08.check_hybrid_state(..., verbose=False)
