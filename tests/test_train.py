"""sseq.train: tiny models learn trivially learnable tasks; the loop is deterministic,
respects its time budget, records the history it promises, and rejects bad arguments."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sseq import train


def separable(n=512, seed=0):
    """Two classes split by the sign of the first coordinate: a linear model learns it."""
    x = torch.randn(n, 4, generator=torch.Generator().manual_seed(seed))
    return x, (x[:, 0] > 0).long()


def fresh_linear(seed=0, d_in=4, d_out=2):
    torch.manual_seed(seed)
    return torch.nn.Linear(d_in, d_out)


def test_a_linear_classifier_learns_a_separable_task():
    x, y = separable()
    model = fresh_linear()
    history = train.fit(model, x, y, steps=300, lr=3e-2, progress=False,
                        eval_data=separable(256, seed=1))
    assert history["eval_acc"][-1] > 0.95
    assert train.accuracy(model, *separable(256, seed=2)) > 0.95
    assert history["loss"][-1] < history["loss"][0]


def test_per_position_classification_and_the_ignore_index():
    tokens = torch.randint(0, 5, (256, 6), generator=torch.Generator().manual_seed(0))
    targets = tokens.clone()
    targets[:, :3] = -100  # not scored
    torch.manual_seed(0)
    model = torch.nn.Embedding(5, 5)  # (b, l) -> logits (b, l, 5): learn the identity
    train.fit(model, tokens, targets, steps=200, lr=5e-2, progress=False)
    assert train.accuracy(model, tokens, targets) == 1.0
    with torch.no_grad():  # make the unscored half wrong: accuracy must not move
        model.weight[:] = torch.eye(5) * 10
    shifted = tokens.clone()
    shifted[:, :3] = (tokens[:, :3] + 1) % 5
    assert train.accuracy(model, shifted, targets) == 1.0


def test_regression_with_mse_learns_a_linear_map():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(512, 3, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5])  # (n,): the model's (b, 1) output is squeezed
    model = fresh_linear(d_in=3, d_out=1)
    history = train.fit(model, x, y, steps=400, lr=5e-2, loss="mse", progress=False,
                        eval_data=(x, y))
    assert history["eval_loss"][-1] < 1e-3
    assert all(math.isnan(a) for a in history["eval_acc"])


def test_fit_is_deterministic_given_seed_and_leaves_the_global_rng_alone():
    x, y = separable()
    runs = []
    for seed in (0, 0, 1):
        model = fresh_linear()
        state = torch.random.get_rng_state()
        history = train.fit(model, x, y, steps=30, eval_every=10, seed=seed, progress=False)
        assert torch.equal(state, torch.random.get_rng_state())
        runs.append((history["loss"], model.weight.detach().clone()))
    assert runs[0][0] == runs[1][0] and torch.equal(runs[0][1], runs[1][1])
    assert runs[0][0] != runs[2][0]


def test_history_is_recorded_every_eval_every_steps_and_at_the_end():
    x, y = separable()
    history = train.fit(fresh_linear(), x, y, steps=120, eval_every=50, progress=False)
    assert set(history) == {"step", "loss", "eval_loss", "eval_acc", "seconds"}
    assert history["step"] == [50, 100, 120]
    assert all(len(v) == 3 for v in history.values())
    assert all(math.isnan(v) for v in history["eval_loss"])
    assert history["seconds"] == sorted(history["seconds"]) and history["seconds"][0] > 0


def test_time_budget_stops_training_early():
    x, y = separable()
    history = train.fit(fresh_linear(), x, y, steps=10_000, time_budget=1e-9, progress=False)
    assert history["step"] == [1]
    assert history["seconds"][-1] >= 1e-9


def test_clip_grad_limits_the_update():
    x, y = separable()
    moved = {}
    for clip in (None, 1e-12):
        model = fresh_linear()
        start = model.weight.detach().clone()
        train.fit(model, x, y, steps=5, lr=0.1, clip_grad=clip, progress=False)
        moved[clip] = float((model.weight.detach() - start).abs().max())
    # Adam divides by sqrt(v) + 1e-8: gradients of 1e-12 make steps ~1e-4 times smaller.
    assert moved[1e-12] < 1e-2 * moved[None]


def test_progress_bar_runs(capsys):
    x, y = separable(64)
    history = train.fit(fresh_linear(), x, y, steps=3, progress=True)
    assert history["step"] == [3]
    assert "training" in capsys.readouterr().err


def test_time_training_step_leaves_the_model_alone():
    x, y = separable(32)
    model = fresh_linear()
    before = model.weight.detach().clone()
    timing = train.time_training_step(model, x, y, repeat=3)
    assert timing.median > 0 and len(timing.runs) == 3
    assert torch.equal(model.weight, before)


def test_compute_loss_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"logits must have shape \(8, 'c'\)"):
        train.compute_loss(torch.randn(8, 5, 3), torch.zeros(8, dtype=torch.long))
    with pytest.raises(ValueError, match=r"targets' shape \(8,\)"):
        train.compute_loss(torch.randn(8, 2), torch.zeros(8), "mse")


@pytest.mark.parametrize("kwargs, error, match", [
    ({"model": "linear"}, TypeError, "model must be a torch.nn.Module"),
    ({"inputs": [[0.0]]}, TypeError, "inputs must be a torch.Tensor"),
    ({"targets": torch.zeros(3)}, ValueError, "same number n >= 1 of examples"),
    ({"steps": 0}, ValueError, "steps must be a positive int"),
    ({"batch_size": 2.5}, ValueError, "batch_size must be a positive int"),
    ({"lr": -1.0}, ValueError, "lr must be a positive finite number"),
    ({"loss": "hinge"}, ValueError, "loss must be one of"),
    ({"seed": -3}, ValueError, "seed must be an int >= 0"),
    ({"eval_data": torch.zeros(3)}, TypeError, "eval_data must be a pair"),
    ({"eval_every": 0}, ValueError, "eval_every must be a positive int"),
    ({"time_budget": 0}, ValueError, "time_budget must be a positive number or None"),
    ({"clip_grad": "1"}, ValueError, "clip_grad must be a positive number or None"),
])
def test_bad_arguments_are_rejected(kwargs, error, match):
    x, y = separable(16)
    args = {"model": fresh_linear(), "inputs": x, "targets": y, "steps": 2, **kwargs}
    model, inputs, targets = args.pop("model"), args.pop("inputs"), args.pop("targets")
    with pytest.raises(error, match=match):
        train.fit(model, inputs, targets, progress=False, **args)


def test_numpy_integers_are_python_integers_here():
    """steps, batch_size, eval_every and seed from NumPy (np.arange, a config array) train
    exactly as the same Python ints (issue 9: refused)."""
    x, y = separable(64)
    runs = []
    for cast in (int, np.int64, np.int32):
        model = fresh_linear()
        history = train.fit(model, x, y, steps=cast(6), batch_size=cast(8), eval_every=cast(3),
                            seed=cast(4), progress=False)
        runs.append((history["loss"], model.weight.detach().clone()))
    for loss, weight in runs[1:]:
        assert loss == runs[0][0] and torch.equal(weight, runs[0][1])


@pytest.mark.parametrize("lr", [math.inf, -math.inf, math.nan])
def test_an_infinite_learning_rate_is_refused(lr):
    x, y = separable(16)
    with pytest.raises(ValueError, match="lr must be a positive finite number"):
        train.fit(fresh_linear(), x, y, steps=2, lr=lr, progress=False)


def test_accuracy_rejects_bad_arguments():
    x, y = separable(16)
    with pytest.raises(ValueError, match="batch_size"):
        train.accuracy(fresh_linear(), x, y, batch_size=0)
    with pytest.raises(ValueError, match="same number"):
        train.accuracy(fresh_linear(), x, y[:4])
