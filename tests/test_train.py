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


# --- what the mutation tests found untested (make mutants) ------------------------------------


def _recording_steps(monkeypatch):
    """Replace train._train_step by a wrapper that records each batch's inputs and loss."""
    calls = []
    step = train._train_step

    def recording(model, optimizer, inputs, targets, loss, clip_grad):
        value = step(model, optimizer, inputs, targets, loss, clip_grad)
        calls.append((inputs.clone(), value))
        return value

    monkeypatch.setattr(train, "_train_step", recording)
    return calls


def test_fit_draws_its_batches_from_a_generator_seeded_with_seed(monkeypatch):
    """Protects the batch order: ``batch_size`` indices per step, uniform with replacement,
    from a torch.Generator of its own seeded with ``seed``, for exactly ``steps`` steps: the
    model's own randomness (dropout, drawn from the global state) does not shift it."""
    calls = _recording_steps(monkeypatch)
    x, y = separable(64)
    torch.manual_seed(123)  # the global state must not matter
    model = torch.nn.Sequential(torch.nn.Dropout(0.5), fresh_linear())
    train.fit(model, x, y, steps=5, batch_size=8, seed=7, progress=False)
    g = torch.Generator().manual_seed(7)
    assert len(calls) == 5
    for inputs, _ in calls:
        torch.testing.assert_close(inputs, x[torch.randint(64, (8,), generator=g)], rtol=0,
                                   atol=0)


def test_fit_records_the_mean_loss_since_the_previous_record(monkeypatch):
    """Protects the history's ``loss``: the mean of the batch losses since the previous record
    (every ``eval_every`` steps and at the end), not a sum, not the last one."""
    calls = _recording_steps(monkeypatch)
    x, y = separable(64)
    history = train.fit(fresh_linear(), x, y, steps=7, batch_size=8, eval_every=3, lr=0.1,
                        progress=False)
    losses = [value for _, value in calls]
    assert history["step"] == [3, 6, 7]
    want = [np.mean(losses[0:3]), np.mean(losses[3:6]), losses[6]]
    np.testing.assert_allclose(history["loss"], want, rtol=1e-12)


def test_fit_defaults_are_the_documented_ones(capsys):
    """Protects fit's defaults: batch_size 32, lr 1e-3, seed 0, eval_every 50, a progress
    bar named "training" that is cleared when done (leave=False: no line is left)."""
    x, y = separable(256)
    runs = []
    for kwargs in ({}, {"batch_size": 32, "lr": 1e-3, "seed": 0, "eval_every": 50}):
        model = fresh_linear()
        history = train.fit(model, x, y, steps=60, **kwargs)
        runs.append((history, model.weight.detach().clone()))
        err = capsys.readouterr().err
        assert "training" in err and "XX" not in err and "\n" not in err
    assert runs[0][0]["step"] == [50, 60] and runs[0][0]["loss"] == runs[1][0]["loss"]
    assert torch.equal(runs[0][1], runs[1][1])
    train.fit(fresh_linear(), x, y, steps=3, progress=False)
    assert capsys.readouterr().err == ""


def test_progress_bar_shows_the_mean_loss(capsys, monkeypatch):
    """Protects the bar's postfix: the mean training loss since the previous record."""
    calls = _recording_steps(monkeypatch)
    x, y = separable(64)
    train.fit(fresh_linear(), x, y, steps=4, batch_size=8, eval_every=4, lr=0.1)
    mean = np.mean([value for _, value in calls])
    assert f"loss={mean:.3f}" in capsys.readouterr().err


def test_time_budget_counts_training_seconds_exactly(monkeypatch):
    """Protects the time budget: training stops at the first step whose training time reaches
    the budget (``>=``), and ``seconds`` is the training time so far. A fake clock that
    advances 0.25 s per reading makes each step take exactly 0.25 s."""
    now = [100.0]

    def clock():
        now[0] += 0.25
        return now[0]

    monkeypatch.setattr(train.time, "perf_counter", clock)
    x, y = separable(64)
    history = train.fit(fresh_linear(), x, y, steps=100, time_budget=0.75, eval_every=2,
                        progress=False)
    assert history["step"] == [2, 3]
    assert history["seconds"] == [0.5, 0.75]


def test_evaluate_scores_only_the_scored_positions_and_defaults_to_cross_entropy():
    """Protects evaluate: per-position logits (b, l, c) are scored along the class axis, only
    where the target is not IGNORE, and the default loss is cross-entropy."""
    targets = torch.tensor([[1, 2, -100, 0], [0, -100, 2, 1]])  # (b, l) = (2, 4), 3 classes
    logits = torch.full((2, 4, 3), -5.0)
    right = {(0, 0): 1, (0, 1): 0, (0, 2): 2, (0, 3): 0, (1, 0): 0, (1, 1): 1, (1, 2): 2,
             (1, 3): 2}  # right at (0, 0), (0, 3), (1, 0), (1, 2); wrong at (0, 1), (1, 3)
    for (i, j), c in right.items():
        logits[i, j, c] = 5.0

    class Fixed(torch.nn.Module):
        def forward(self, inputs):
            return logits[inputs]

    index = torch.arange(2)
    loss, acc = train.evaluate(Fixed(), index, targets)
    assert acc == pytest.approx(4 / 6) and train.accuracy(Fixed(), index, targets) == acc
    want = torch.nn.functional.cross_entropy(logits.reshape(-1, 3), targets.reshape(-1))
    assert loss == pytest.approx(float(want), rel=1e-6)


def test_compute_loss_checks_each_shape_condition():
    """Protects compute_loss's checks: logits with the right rank but another batch size are
    refused by name; mse squeezes only a trailing 1, also for per-position targets."""
    with pytest.raises(ValueError, match=r"logits must have shape \(8, 'c'\) \(targets' "
                                         r"shape plus classes\), got \(6, 3\)"):
        train.compute_loss(torch.randn(6, 3), torch.zeros(8, dtype=torch.long))
    out, targets = torch.randn(4, 5, 1), torch.randn(4, 5)
    assert float(train.compute_loss(out, targets, "mse")) == pytest.approx(
        float(((out.squeeze(-1) - targets) ** 2).mean()))


def test_data_checks_name_their_arguments_and_accept_one_example():
    """Protects the data checks of every entry point: each names its arguments, a 0-d input
    is refused, one example (and 1-D inputs) are accepted."""
    x, y = separable(16)
    model = fresh_linear()
    mismatch = r"^{} and {} must hold the same number n >= 1 of examples"
    for call in (lambda: train.accuracy(model, x, y[:4]),
                 lambda: train.evaluate(model, x, y[:4]),
                 lambda: train.time_training_step(model, x, y[:4]),
                 lambda: train.fit(model, x, y[:4], steps=1, progress=False)):
        with pytest.raises(ValueError, match=mismatch.format("inputs", "targets")):
            call()
    with pytest.raises(ValueError, match=mismatch.format(r"eval_data\[0\]", r"eval_data\[1\]")):
        train.fit(model, x, y, steps=1, progress=False, eval_data=(x, y[:4]))
    with pytest.raises(TypeError, match="^targets must be a torch.Tensor, got list$"):
        train.accuracy(model, x, [0, 1])
    with pytest.raises(TypeError, match="^model must be a torch.nn.Module, got str$"):
        train.fit("linear", x, y, steps=1, progress=False)
    with pytest.raises(TypeError, match=r"^eval_data must be a pair \(inputs, targets\) or "
                                        r"None, got tuple$"):
        train.fit(model, x, y, steps=1, progress=False, eval_data=(x, y, y))
    with pytest.raises(ValueError, match="same number n >= 1"):
        train.accuracy(model, torch.tensor(1.0), y)
    assert train.accuracy(model, x[:1], y[:1]) in (0.0, 1.0)
    scale = torch.nn.Linear(1, 2)
    one_d = torch.nn.Sequential(torch.nn.Unflatten(0, (-1, 1)), scale)  # (b,) -> (b, 2)
    assert 0.0 <= train.accuracy(one_d, x[:, 0], y) <= 1.0


def test_counts_of_one_and_required_numbers():
    """Protects the argument checks' boundaries and messages: 1 is a positive int (one step,
    batches of one), and a required number (lr) is not optional."""
    x, y = separable(16)
    history = train.fit(fresh_linear(), x, y, steps=1, batch_size=1, eval_every=1,
                        progress=False)
    assert history["step"] == [1]
    with pytest.raises(ValueError, match="^lr must be a positive finite number, got None$"):
        train.fit(fresh_linear(), x, y, steps=1, lr=None, progress=False)
    with pytest.raises(ValueError, match="^batch_size must be a positive int, got 0$"):
        train.accuracy(fresh_linear(), x, y, batch_size=0)


def test_time_training_step_times_warmup_and_repeat_real_steps(monkeypatch):
    """Protects time_training_step: ``warmup`` untimed then ``repeat`` timed training steps
    (defaults 1 and 5), each a real step of the copy, and an unknown loss refused by name."""
    calls = _recording_steps(monkeypatch)
    x, y = separable(32)
    timing = train.time_training_step(fresh_linear(), x, y)
    assert len(timing.runs) == 5 and len(calls) == 6
    calls.clear()
    train.time_training_step(fresh_linear(), x, y, repeat=2, warmup=3)
    assert len(calls) == 5 and all(torch.equal(inputs, x) for inputs, _ in calls)
    with pytest.raises(ValueError, match=r"^loss must be one of \('cross_entropy', 'mse'\), "
                                         r"got 'hinge'$"):
        train.time_training_step(fresh_linear(), x, y, loss="hinge")


@pytest.mark.parametrize("clip_grad", [None, 0.05])
def test_fit_takes_the_steps_of_a_hand_written_adam_loop(clip_grad):
    """Protects each training step against an independent loop written out here: fresh
    gradients each step (zeroed first: gradients that pile up from step to step still train
    a little, so only the parameters can show it), cross-entropy on the drawn batch, the
    clipped gradient norm, then one Adam update at ``lr``. After a few steps the parameters
    must equal the loop's to float32 rounding."""
    x, y = separable(64)
    model, oracle = fresh_linear(), fresh_linear()
    train.fit(model, x, y, steps=4, batch_size=8, lr=0.1, seed=3, progress=False,
              clip_grad=clip_grad)
    optimizer = torch.optim.Adam(oracle.parameters(), lr=0.1)
    g = torch.Generator().manual_seed(3)
    for _ in range(4):
        idx = torch.randint(64, (8,), generator=g)
        for p in oracle.parameters():
            p.grad = None
        torch.nn.functional.cross_entropy(oracle(x[idx]), y[idx]).backward()
        if clip_grad is not None:
            grads = torch.cat([p.grad.flatten() for p in oracle.parameters()])
            factor = min(1.0, clip_grad / (float(grads.norm()) + 1e-6))
            for p in oracle.parameters():
                p.grad *= factor
        optimizer.step()
    for got, want in zip(model.parameters(), oracle.parameters(), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
