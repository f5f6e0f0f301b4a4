"""A small training loop for the book's experiments, and the measurements around it.

:func:`fit` trains any model that maps a batch of inputs to logits (or to values,
for a regression) with Adam on random mini-batches, and returns a history that
``sseq.viz.plot_history`` plots. It is deterministic given ``seed`` (and the
model's initial weights), and it can stop after a wall-time budget, so that two
models can be compared "at the same training time".

Shapes: ``n`` examples; ``b`` batch; ``l`` length; ``c`` classes.
"""

from __future__ import annotations

import copy
import math
import numbers
import time

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from sseq.bench import Timing, time_fn
from sseq.tasks import IGNORE  # targets equal to this (-100) are not scored

__all__ = ["accuracy", "compute_loss", "evaluate", "fit", "time_training_step"]

LOSSES = ("cross_entropy", "mse")


def compute_loss(output, targets, loss: str = "cross_entropy"):
    """The training objective, for one answer per sequence or one per position.

    Args:
        output: logits ``(b, c)`` or ``(b, l, c)`` for ``"cross_entropy"``; values of
            the targets' shape (or with a trailing 1) for ``"mse"``.
        targets: class ids ``(b,)`` or ``(b, l)`` (``-100`` is not scored); or floats.
        loss: ``"cross_entropy"`` or ``"mse"``.

    Returns:
        The mean loss, a scalar tensor.
    """
    if loss == "cross_entropy":
        if output.ndim != targets.ndim + 1 or output.shape[:-1] != targets.shape:
            raise ValueError(f"for cross_entropy the model's logits must have shape "
                             f"{(*targets.shape, 'c')} (targets' shape plus classes), "
                             f"got {tuple(output.shape)}")
        return F.cross_entropy(output.reshape(-1, output.shape[-1]), targets.reshape(-1))
    if output.shape == (*targets.shape, 1):
        output = output.squeeze(-1)
    if output.shape != targets.shape:
        raise ValueError(f"for mse the model's output must have the targets' shape "
                         f"{tuple(targets.shape)}, got {tuple(output.shape)}")
    return F.mse_loss(output, targets)


@torch.no_grad()
def _predict(model, inputs, batch_size):
    """The model's outputs on all ``inputs``, in evaluation mode, batch by batch."""
    was_training = model.training
    model.eval()
    outputs = [model(inputs[i:i + batch_size]) for i in range(0, len(inputs), batch_size)]
    model.train(was_training)
    return torch.cat(outputs)


def accuracy(model, inputs, targets, batch_size: int = 256) -> float:
    """The fraction of scored targets whose class is the model's arg-max.

    Args:
        model: maps ``(b, ...)`` inputs to logits ``(b, c)`` or ``(b, l, c)``.
        inputs: ``(n, ...)``; targets: class ids ``(n,)`` or ``(n, l)``; ``-100`` is skipped.
        batch_size: examples per forward pass.

    Returns:
        A float in [0, 1].
    """
    _check_data(inputs, targets, "inputs", "targets")
    _check_positive_int("batch_size", batch_size)
    predicted = _predict(model, inputs, batch_size).argmax(dim=-1)  # targets' shape
    scored = targets != IGNORE
    return float((predicted[scored] == targets[scored]).float().mean())


def evaluate(model, inputs, targets, loss: str = "cross_entropy", batch_size: int = 256):
    """Loss and accuracy on held-out data (accuracy is NaN for ``"mse"``).

    Returns:
        ``(loss, accuracy)`` as floats.
    """
    _check_data(inputs, targets, "inputs", "targets")
    output = _predict(model, inputs, batch_size)
    value = float(compute_loss(output, targets, loss))
    if loss == "mse":
        return value, math.nan
    scored = targets != IGNORE
    return value, float((output.argmax(-1)[scored] == targets[scored]).float().mean())


def _train_step(model, optimizer, inputs, targets, loss, clip_grad):
    """One step of gradient descent on one batch; returns the batch loss."""
    optimizer.zero_grad(set_to_none=True)
    value = compute_loss(model(inputs), targets, loss)
    value.backward()
    if clip_grad is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
    optimizer.step()
    return value.item()


def fit(model, inputs, targets, *, steps, batch_size=32, lr=1e-3, loss="cross_entropy", seed=0,
        eval_data=None, eval_every=50, time_budget=None, progress=True, clip_grad=None) -> dict:
    """Train ``model`` with Adam on random mini-batches of ``(inputs, targets)``.

    Args:
        model: a ``torch.nn.Module``; ``model(inputs[idx])`` returns logits whose
            leading dimensions match ``targets[idx]`` (see :func:`compute_loss`).
        inputs: ``(n, ...)``; targets: ``(n,)`` or ``(n, l)``.
        steps: the number of optimizer steps.
        batch_size: examples per step, drawn uniformly with replacement.
        lr: Adam's learning rate.
        loss: ``"cross_entropy"`` (classification) or ``"mse"`` (regression).
        seed: seeds the batch order and any randomness inside the model.
        eval_data: an optional ``(inputs, targets)`` pair scored at each record.
        eval_every: record the history every this many steps (and at the end).
        time_budget: stop once training (evaluation excluded) has taken this many seconds.
        progress: show a tqdm progress bar.
        clip_grad: clip the gradient's global norm to this value.

    Returns:
        The history, a dict of equal-length lists: ``step``; ``loss`` (mean training loss
        since the previous record); ``eval_loss`` and ``eval_acc`` (NaN without
        ``eval_data``); ``seconds`` (training time so far).
    """
    _check_fit_args(model, inputs, targets, steps, batch_size, lr, loss, seed, eval_data,
                    eval_every, time_budget, clip_grad)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    batches = torch.Generator().manual_seed(int(seed))  # int(): a NumPy seed too
    history = {key: [] for key in ("step", "loss", "eval_loss", "eval_acc", "seconds")}
    seconds, running, count = 0.0, 0.0, 0
    model.train()
    with torch.random.fork_rng(devices=[]):  # leave the caller's random state alone
        torch.manual_seed(seed)
        bar = tqdm(range(1, steps + 1), desc="training", disable=not progress, leave=False)
        for step in bar:
            start = time.perf_counter()
            idx = torch.randint(len(inputs), (batch_size,), generator=batches).to(inputs.device)
            running += _train_step(model, optimizer, inputs[idx], targets[idx], loss, clip_grad)
            seconds += time.perf_counter() - start
            count += 1
            out_of_time = time_budget is not None and seconds >= time_budget
            if step % eval_every == 0 or step == steps or out_of_time:
                scores = evaluate(model, *eval_data, loss) if eval_data else (math.nan,) * 2
                record = {"step": step, "loss": running / count, "eval_loss": scores[0],
                          "eval_acc": scores[1], "seconds": seconds}
                for key, value in record.items():
                    history[key].append(value)
                bar.set_postfix(loss=f"{running / count:.3f}")
                running, count = 0.0, 0
            if out_of_time:
                break
        bar.close()
    return history


def time_training_step(model, inputs, targets, *, loss="cross_entropy", lr=1e-3,
                       repeat=5, warmup=1) -> Timing:
    """Seconds per training step (forward, backward, Adam update) on one batch.

    The model is copied first, so its weights are left untouched.

    Args:
        model: as for :func:`fit`; inputs ``(b, ...)`` and targets: one batch.
        repeat, warmup: timed and untimed steps (see ``sseq.bench.time_fn``).

    Returns:
        A ``sseq.bench.Timing`` (median seconds per step and the spread).
    """
    _check_data(inputs, targets, "inputs", "targets")
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    model = copy.deepcopy(model).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    return time_fn(lambda: _train_step(model, optimizer, inputs, targets, loss, None),
                   repeat=repeat, warmup=warmup)


# --- Argument checks --------------------------------------------------------------------


def _is_int(value) -> bool:
    """A Python or NumPy integer, not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_positive_int(name, value):
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def _check_positive_number(name, value, optional=False, finite=False):
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0 \
            or (finite and not math.isfinite(value)):
        kind = "positive finite number" if finite else "positive number"
        raise ValueError(f"{name} must be a {kind}{' or None' if optional else ''}, "
                         f"got {value!r}")


def _check_data(inputs, targets, name_x, name_y):
    for name, value in ((name_x, inputs), (name_y, targets)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if inputs.ndim == 0 or len(inputs) == 0 or len(inputs) != len(targets):
        raise ValueError(f"{name_x} and {name_y} must hold the same number n >= 1 of examples "
                         f"(first dimension), got shapes {tuple(inputs.shape)} and "
                         f"{tuple(targets.shape)}")


def _check_fit_args(model, inputs, targets, steps, batch_size, lr, loss, seed, eval_data,
                    eval_every, time_budget, clip_grad):
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    _check_data(inputs, targets, "inputs", "targets")
    for name, value in (("steps", steps), ("batch_size", batch_size), ("eval_every", eval_every)):
        _check_positive_int(name, value)
    _check_positive_number("lr", lr, finite=True)
    _check_positive_number("time_budget", time_budget, optional=True)
    _check_positive_number("clip_grad", clip_grad, optional=True)
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    if eval_data is not None:
        if not isinstance(eval_data, (tuple, list)) or len(eval_data) != 2:
            raise TypeError("eval_data must be a pair (inputs, targets) or None, got "
                            f"{type(eval_data).__name__}")
        _check_data(*eval_data, "eval_data[0]", "eval_data[1]")
