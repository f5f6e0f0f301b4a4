"""The synthetic tasks: shapes and dtypes, determinism, and each task's defining property."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sseq import tasks


def test_adding_problem_shapes_markers_and_targets():
    inputs, targets = tasks.adding_problem(64, 10, seed=3)
    assert inputs.shape == (64, 10, 2) and inputs.dtype == torch.float32
    assert targets.shape == (64,) and targets.dtype == torch.float32
    values, markers = inputs[..., 0], inputs[..., 1]
    assert ((values >= 0) & (values < 1)).all()
    assert set(markers.unique().tolist()) == {0.0, 1.0}
    assert (markers[:, :5].sum(1) == 1).all() and (markers[:, 5:].sum(1) == 1).all()
    for i in range(64):  # the oracle: a loop adding the marked values
        expected = sum(float(v) for v, m in zip(values[i], markers[i], strict=True) if m == 1)
        assert abs(float(targets[i]) - expected) < 1e-6


def test_adding_problem_baseline_mse_is_one_sixth():
    _, targets = tasks.adding_problem(20_000, 20, seed=0)
    # The sum of two independent U[0, 1) values has mean 1 and variance 2/12.
    assert abs(float(((targets - 1.0) ** 2).mean()) - 1 / 6) < 0.01


def test_delayed_recall_defining_property():
    inputs, targets = tasks.delayed_recall(200, 6, n_symbols=5, seed=1)
    assert inputs.shape == (200, 7) and inputs.dtype == torch.int64
    assert targets.shape == (200,) and targets.dtype == torch.int64
    assert torch.equal(targets, inputs[:, 0])
    assert inputs.min() >= 1 and inputs.max() <= 5  # distractors are symbols too
    assert len(inputs[:, 1:].unique()) == 5
    blank, answer = tasks.delayed_recall(50, 4, distractors=False, seed=1)
    assert (blank[:, 1:] == tasks.BLANK).all() and torch.equal(answer, blank[:, 0])
    no_delay, _ = tasks.delayed_recall(5, 0)
    assert no_delay.shape == (5, 1)


def test_delayed_recall_distractors_say_nothing_about_the_answer():
    """Protects: the answer is uniform over the symbols and the distractors are drawn
    independently of it, so no token after the first gives the answer away.

    Over 16000 sequences of 8 symbols, each symbol is the answer, and each distractor position
    (the last one included) equals the answer, in 1/8 of them, within 0.015 (6 standard
    deviations). A generator whose last distractor repeats the answer, or that never draws
    it, fails.
    """
    n, n_symbols = 16000, 8
    inputs, targets = tasks.delayed_recall(n, 5, n_symbols=n_symbols, seed=3)
    share = torch.bincount(targets, minlength=n_symbols + 1)[1:] / n
    assert (share - 1 / n_symbols).abs().max() < 0.015
    same = (inputs[:, 1:] == targets[:, None]).double().mean(dim=0)  # per position (delay,)
    assert (same - 1 / n_symbols).abs().max() < 0.015, same
    filler = torch.bincount(inputs[:, 1:].flatten(), minlength=n_symbols + 1)
    assert filler[tasks.BLANK] == 0
    assert (filler[1:] / filler.sum() - 1 / n_symbols).abs().max() < 0.01


@pytest.mark.parametrize("task, args", [(tasks.adding_problem, (8, 6)),
                                        (tasks.delayed_recall, (8, 6))])
def test_tasks_are_deterministic_and_accept_a_generator(task, args):
    first, second, other = task(*args, seed=5), task(*args, seed=5), task(*args, seed=6)
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(first[0], other[0])
    g = torch.Generator().manual_seed(5)
    from_generator = task(*args, seed=g)
    assert torch.equal(from_generator[0], first[0])
    assert not torch.equal(task(*args, seed=g)[0], first[0])  # the generator advanced


@pytest.mark.parametrize("task, args", [(tasks.adding_problem, (8, 6)),
                                        (tasks.delayed_recall, (8, 6))])
def test_numpy_integers_are_accepted(task, args):
    want = task(*args, seed=5)
    got = task(*map(np.int64, args), seed=np.int64(5))
    for a, b in zip(got, want, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("call, error, match", [
    (lambda: tasks.adding_problem(0, 5), ValueError, "n must be an int >= 1"),
    (lambda: tasks.adding_problem(4, 1), ValueError, "length must be an int >= 2"),
    (lambda: tasks.delayed_recall(4, -1), ValueError, "delay must be an int >= 0"),
    (lambda: tasks.delayed_recall(4, 3, n_symbols=1), ValueError,
     "^n_symbols must be an int >= 2, got 1$"),
    (lambda: tasks.delayed_recall(0, 3), ValueError, "^n must be an int >= 1, got 0$"),
    (lambda: tasks.delayed_recall(True, 3), ValueError, "^n must be an int >= 1, got True$"),
    (lambda: tasks.delayed_recall(2.0, 3), ValueError, r"^n must be an int >= 1, got 2\.0$"),
    (lambda: tasks.delayed_recall(4, 3, distractors="yes"), TypeError, "distractors"),
    (lambda: tasks.delayed_recall(4, 3, seed=1.5), TypeError,
     "^seed must be an int or a torch.Generator, got float$"),
    (lambda: tasks.adding_problem(4, 3, seed=-1), ValueError, "seed must be >= 0"),
])
def test_bad_arguments_are_rejected(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_unseen_keeps_exactly_the_test_sequences_not_in_training():
    x_train, _ = tasks.delayed_recall(300, 3, n_symbols=4, seed=1)
    x_test, y_test = tasks.delayed_recall(200, 3, n_symbols=4, seed=2)
    kept, kept_y = tasks.unseen(x_test, y_test, x_train)
    train_rows = {tuple(r) for r in x_train.tolist()}  # the oracle: Python sets of rows
    expected = [r for r in x_test.tolist() if tuple(r) not in train_rows]
    assert kept.tolist() == expected and 0 < len(expected) < 200
    torch.testing.assert_close(kept_y, kept[:, 0])  # targets filtered alongside


def test_without_distractors_no_test_sequence_is_held_out():
    """With blanks only 8 sequences exist: a 'fresh' test set repeats the training set."""
    x_train, _ = tasks.delayed_recall(2000, 10, distractors=False, seed=1)
    x_test, y_test = tasks.delayed_recall(500, 10, distractors=False, seed=2)
    assert len(tasks.unseen(x_test, y_test, x_train)[0]) == 0


def test_unseen_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="trailing shape"):
        tasks.unseen(torch.zeros(3, 4), torch.zeros(3), torch.zeros(2, 5))
    with pytest.raises(TypeError, match="torch tensors"):
        tasks.unseen([[1]], torch.zeros(1), torch.zeros(1, 1))
def test_defaults_are_the_documented_ones():
    """Protects the defaults that the chapters rely on: seed 0, and 8 symbols for
    delayed_recall (the smallest count, 2, is allowed)."""
    for got, want in ((tasks.adding_problem(6, 9), tasks.adding_problem(6, 9, seed=0)),
                      (tasks.delayed_recall(6, 3), tasks.delayed_recall(6, 3, n_symbols=8,
                                                                        seed=0))):
        for a, b in zip(got, want, strict=True):
            assert torch.equal(a, b)
    inputs, _ = tasks.delayed_recall(200, 3, n_symbols=2)
    assert set(inputs.unique().tolist()) == {1, 2}


def test_adding_problem_markers_cover_each_half():
    """Protects where the markers fall: the first anywhere in [0, l/2), the second anywhere in
    [l/2, l), every position possible (position 0 included)."""
    inputs, _ = tasks.adding_problem(2000, 9, seed=2)
    first = inputs[:, :4, 1].argmax(dim=1)
    second = 4 + inputs[:, 4:, 1].argmax(dim=1)
    assert set(first.tolist()) == {0, 1, 2, 3} and set(second.tolist()) == {4, 5, 6, 7, 8}
