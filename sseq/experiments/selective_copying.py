"""Selective copying (Mamba, §3.1 and Table 1) in miniature: which layer can select?

The same two-layer token model (:mod:`sseq.mixers`) with five mixers — S4D (LTI) and S6
(selective), each without and with the gate, and Mamba — plus an LSTM with as many
parameters as the Mamba model, is trained on

* **selective copying**: data symbols at random positions among noise, to be repeated in
  order at the end (:func:`sseq.tasks.selective_copying`): the gap between a symbol and its
  copy varies, so the model must decide by content what to keep;
* **plain copying**: the same, but the symbols come first, so every gap is the same and a
  fixed convolution kernel can solve it — this tells selection apart from memory.

Each (task, model, seed) is one run: Adam at a constant learning rate on batches drawn from
a fixed training set, the accuracy on held-out sequences (at the positions that are scored)
every ``eval_every`` steps. The paper's numbers (Table 1, sequence length 4096, 16 tokens to
copy, trained far longer) are in :data:`PAPER`.

    python -m sseq.experiments selective_copying [--jobs 2]
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sseq import mixers, tasks, train

DESCRIPTION = "Selective vs plain copying: S4D, S6, with and without gate, Mamba, LSTM"
PAPER = {"s4d": 0.183, "s6": 0.970, "mamba": 0.998}  # Table 1 of Gu & Dao (2023)
PREFIX_STEPS = 100  # what the test re-runs: the first two records of a run
RECORDS = ("step", "loss", "eval_acc")  # a run's log, one entry per record


@dataclass(frozen=True)
class Config:
    """The full run; ``QUICK`` is a smaller one."""

    length: int = 64  # tokens holding data and noise
    n_memorize: int = 8  # data symbols to copy
    n_symbols: int = 16  # distinct data symbols (chance accuracy 1/16)
    d_model: int = 32
    n_layer: int = 2
    d_state: int = 16
    steps: int = 2500  # selective copying
    lstm_steps: int = 10000  # the LSTM learns it slowly: 4× longer, also scored at ``steps``
    plain_steps: int = 1000  # plain copying is learned much faster
    batch_size: int = 32
    lr: float = 3e-3
    eval_every: int = 50
    n_train: int = 20000
    n_eval: int = 512
    models: tuple = ("s4d", "s4d_gate", "s6", "mamba", "lstm")
    plain_models: tuple = ("s4d", "mamba")


QUICK = Config(steps=300, lstm_steps=300, plain_steps=200, n_train=2000, n_eval=256,
               models=("s4d", "mamba"), plain_models=("s4d",))


def jobs(config: Config, seeds) -> list[dict]:
    """One run per (task, model, seed), selective copying first."""
    return ([{"task": "selective", "model": m, "seed": s} for m in config.models for s in seeds]
            + [{"task": "plain", "model": m, "seed": s} for m in config.plain_models
               for s in seeds])


def data(config: Config, task: str, seed: int):
    """``(train, eval)`` pairs of (inputs, targets) for a task: training data from the seed,
    the same held-out data for every seed."""
    kwargs = dict(n_symbols=config.n_symbols, selective=task == "selective")
    train_set = tasks.selective_copying(config.n_train, config.length, config.n_memorize,
                                        seed=10_000 + seed, **kwargs)
    eval_set = tasks.selective_copying(config.n_eval, config.length, config.n_memorize,
                                       seed=1, **kwargs)
    return train_set, eval_set


def build(config: Config, model: str, seed: int) -> torch.nn.Module:
    """The model of a run, initialised from its seed."""
    return mixers.make_model(model, config.n_symbols + 2, d_model=config.d_model,
                             n_layer=config.n_layer, d_state=config.d_state, seed=seed)


def steps_of(config: Config, job: dict) -> int:
    """The training steps of a run."""
    if job["task"] == "plain":
        return config.plain_steps
    return config.lstm_steps if job["model"] == "lstm" else config.steps


def position_accuracy(model, inputs, targets) -> list[float]:
    """The accuracy at each of the copy positions (the first symbol to copy, the second, ...)."""
    with torch.no_grad():
        predicted = model.eval()(inputs).argmax(-1)  # (n, l)
    scored = targets[0] != tasks.IGNORE  # the same positions in every sequence
    return (predicted[:, scored] == targets[:, scored]).float().mean(0).tolist()


def run_job(config: Config, job: dict, steps: int | None = None) -> dict:
    """Train one model. Its log: ``step``, ``loss`` (training), ``eval_acc`` (held out) at each
    record, and ``position_acc``, the final accuracy at each copy position."""
    (x, y), eval_set = data(config, job["task"], job["seed"])
    model = build(config, job["model"], job["seed"])
    total = steps_of(config, job)
    history = train.fit(model, x, y, steps=steps or total, batch_size=config.batch_size,
                        lr=config.lr, seed=job["seed"], eval_data=eval_set,
                        eval_every=config.eval_every, progress=False)
    return {**{key: history[key] for key in RECORDS},
            "position_acc": position_accuracy(model, *eval_set)}


def summarize(config: Config, runs: list[dict]) -> dict:
    """Per task and model: the steps, the final accuracy of each seed and their mean, the
    accuracy after ``config.steps`` (the budget every model gets) and the parameters."""
    out = {}
    for run in runs:
        log = run["log"]
        entry = out.setdefault(run["task"], {}).setdefault(
            run["model"], {"steps": log["step"][-1], "final_acc": [], "budget_acc": []})
        entry["final_acc"].append(log["eval_acc"][-1])
        budget = min(config.steps, log["step"][-1])
        entry["budget_acc"].append(log["eval_acc"][log["step"].index(budget)])
    for task in out.values():
        for model, entry in task.items():
            entry["mean_acc"] = sum(entry["final_acc"]) / len(entry["final_acc"])
            entry["mean_budget_acc"] = sum(entry["budget_acc"]) / len(entry["budget_acc"])
            entry["parameters"] = mixers.count_parameters(build(config, model, 0))
    return out


# --- reading the stored results -----------------------------------------------------------------

LABELS = {"s4d": "S4D, no gate (LTI)", "s4d_gate": "S4D + gate (LTI)", "s6": "S6, no gate",
          "mamba": "Mamba (S6 + gate)", "lstm": "LSTM, same parameters"}


def curves(results: dict, task: str, model: str):
    """Steps ``(r,)`` and the held-out accuracy of every seed ``(seeds, r)`` of one model."""
    import numpy as np

    runs = [r["log"] for r in results["runs"] if r["task"] == task and r["model"] == model]
    if not runs:
        raise ValueError(f"no runs of model {model!r} on task {task!r} in these results")
    return np.array(runs[0]["step"]), np.array([r["eval_acc"] for r in runs])


def plot_accuracy(ax, results: dict, task: str = "selective", models=None):
    """Held-out accuracy against training steps: the mean over seeds, and their range."""
    from sseq.viz import PALETTE

    colors = {"s4d": PALETTE["attention"], "s4d_gate": PALETTE["extra2"],
              "s6": PALETTE["extra3"], "mamba": PALETTE["state"], "lstm": PALETTE["theory"]}
    models = models or [m for m in LABELS if any(r["model"] == m and r["task"] == task
                                                 for r in results["runs"])]
    for model in models:
        steps, acc = curves(results, task, model)
        ax.plot(steps, acc.mean(0), color=colors[model], label=LABELS[model])
        ax.fill_between(steps, acc.min(0), acc.max(0), color=colors[model], alpha=0.2, lw=0)
    chance = 1 / results["config"]["n_symbols"]
    ax.axhline(chance, color=PALETTE["reference"], linestyle=":", lw=1, label="chance")
    budget = results["config"]["steps" if task == "selective" else "plain_steps"]
    ax.set(xlabel="training step", ylabel="held-out accuracy", ylim=(0, 1.02),
           xlim=(0, budget * 1.02), title=f"{task.capitalize()} copying")
    return ax


def table(results: dict, task: str = "selective") -> list[dict]:
    """Rows: parameters; the mean accuracy after the common budget of steps; the final
    accuracy (mean, range over seeds) and its steps; the paper's number."""
    rows, budget = [], results["config"]["steps"]
    for model, entry in results["summary"][task].items():
        acc = entry["final_acc"]
        rows.append({"model": LABELS[model], "parameters": entry["parameters"],
                     f"at {budget} steps": f"{entry['mean_budget_acc']:.1%}",
                     "final (mean)": f"{entry['mean_acc']:.1%}",
                     "range over seeds": f"{min(acc):.1%} – {max(acc):.1%}",
                     "steps": entry["steps"],
                     "paper (Table 1)": f"{PAPER[model]:.1%}"
                     if task == "selective" and model in PAPER else "—"})
    return rows
