"""Copying (Jelassi et al., 2024, "Repeat After Me") in miniature: who learns to copy, and how far?

A Transformer (absolute positions, and RoPE), a Mamba, an LSTM and a hybrid (Mamba, attention,
Mamba), all of about the same number of parameters (:func:`sseq.models.build`), learn to repeat
strings of 1 to ``train_length`` random letters (:func:`sseq.recall_tasks.copying`) from fresh
batches. Each run records the held-out string accuracy against the examples seen, then scores
strings of each length in ``test_lengths`` — inside the training range (how long a string a
trained state holds) and beyond it (length generalisation).

    python -m sseq.experiments copying --jobs 2

The paper's models have 10 M – 1.3 B parameters and see millions of examples; here about 27 k
parameters see ``steps × batch_size`` examples, so only the ordering is comparable.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from sseq import models, recall_tasks
from sseq.experiments.recall import logs_of, plot_band, train_on_task

DESCRIPTION = "Copying: Transformer, Mamba, LSTM, hybrid; examples and length generalisation"
PREFIX_STEPS = 100  # what the test re-runs: the first record of a run
RECORDS = ("step", "loss", "token_acc", "seq_acc")
LABELS = {"transformer": "Transformer (absolute)", "transformer_rope": "Transformer (RoPE)",
          "mamba": "Mamba", "lstm": "LSTM", "hybrid": "Hybrid (Mamba, attention, Mamba)"}
HYBRID = ("mamba", "attention", "mamba")


@dataclass(frozen=True)
class Config:
    """The full run; ``QUICK`` is a smaller one."""

    train_length: int = 16  # strings of 1 .. train_length letters
    test_lengths: tuple = (4, 8, 12, 16, 24, 32, 48)
    n_symbols: int = 26
    d_model: int = 32
    d_state: int = 8  # Mamba's parameters then match the others' (16 would add 20 %)
    steps: int = 800
    batch_size: int = 32
    lr: float = 2e-3
    eval_every: int = 100
    n_eval: int = 256
    families: tuple = ("transformer", "transformer_rope", "mamba", "lstm", "hybrid")


QUICK = Config(steps=100, eval_every=50, n_eval=64, test_lengths=(8, 16, 32),
               families=("transformer", "mamba"))


def jobs(config: Config, seeds) -> list[dict]:
    """One run per (family, seed)."""
    return [{"family": f, "seed": s} for f in config.families for s in seeds]


def build(config: Config, family: str, seed: int):
    """A model of ``family`` (``"hybrid"``: :data:`HYBRID`), initialised from ``seed``."""
    kind = HYBRID if family == "hybrid" else family
    return models.build(kind, config.n_symbols + 4, d_model=config.d_model,
                        d_state=config.d_state, seed=seed)


def run_job(config: Config, job: dict, steps: int | None = None) -> dict:
    """Train one model; its log, and ``length_acc``: string accuracy at each test length."""
    sample = partial(_sample, config)
    eval_set = recall_tasks.copying(config.n_eval, config.train_length, min_length=1,
                                    n_symbols=config.n_symbols, seed=1)
    model = build(config, job["family"], job["seed"])
    log = train_on_task(model, sample, eval_set, steps=steps or config.steps,
                        batch_size=config.batch_size, lr=config.lr, seed=job["seed"],
                        eval_every=config.eval_every)
    log["length_acc"] = [recall_tasks.sequence_accuracy(model, *recall_tasks.copying(
        config.n_eval, n, n_symbols=config.n_symbols, seed=2))[1] for n in config.test_lengths]
    return log


def _sample(config: Config, n: int, generator):
    return recall_tasks.copying(n, config.train_length, min_length=1,
                                n_symbols=config.n_symbols, seed=generator)


def summarize(config: Config, runs: list[dict]) -> dict:
    """Per family: parameters, final string accuracy per seed and its mean, and the mean and
    range over seeds of the accuracy at each test length."""
    out = {}
    for family in config.families:
        logs = [r["log"] for r in runs if r["family"] == family]
        by_length = list(zip(*(log["length_acc"] for log in logs), strict=True))
        out[family] = {
            "parameters": models.count_parameters(build(config, family, 0)),
            "final_seq_acc": [log["seq_acc"][-1] for log in logs],
            "mean_seq_acc": sum(log["seq_acc"][-1] for log in logs) / len(logs),
            "length_mean": [sum(a) / len(a) for a in by_length],
            "length_min": [min(a) for a in by_length],
            "length_max": [max(a) for a in by_length]}
    return out


# --- reading the stored results -----------------------------------------------------------------


def plot_learning(ax, results: dict, families=None):
    """Held-out string accuracy against training examples seen (mean and range over seeds)."""
    for family in families or results["config"]["families"]:
        logs = logs_of(results, family=family)
        plot_band(ax, logs[0]["examples"], [log["seq_acc"] for log in logs], family=family,
                  label=LABELS[family])
    ax.set(xlabel="training examples seen", ylabel="strings copied exactly", ylim=(-0.02, 1.02),
           title=f"Copying strings of 1–{results['config']['train_length']} letters")
    return ax


def plot_lengths(ax, results: dict, families=None):
    """String accuracy against string length, the training range shaded."""
    config = results["config"]
    ax.axvspan(0, config["train_length"], color="0.9", lw=0, label="lengths trained on")
    for family in families or config["families"]:
        logs = logs_of(results, family=family)
        plot_band(ax, config["test_lengths"], [log["length_acc"] for log in logs],
                  family=family, label=LABELS[family])
    ax.set(xlabel="string length (letters)", ylabel="strings copied exactly",
           ylim=(-0.02, 1.02), xlim=(0, max(config["test_lengths"]) + 1),
           title="Copying: length generalisation")
    return ax
