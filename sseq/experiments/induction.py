"""Induction heads in the Mamba paper's setup (Gu & Dao, 2023, §4.1.2), in miniature.

Random symbols from a vocabulary of 16; a marker, then an answer symbol, somewhere in the
sequence; the marker again at the end, where the model must say the answer
(:func:`sseq.recall_tasks.induction_heads`). Models train at ``train_length`` tokens and are
tested at every length in ``test_lengths``, up to 16× longer: a Transformer with absolute
(sinusoidal) positions, one with RoPE, a Mamba and a hybrid (Mamba, attention, Mamba).

    python -m sseq.experiments induction --jobs 2

The paper trains 2-layer models of width 64 at length 256 and tests up to 2²⁰ tokens; its
Mamba stays perfect, and attention with absolute positions fails beyond twice the training
length. Here models are trained at a shorter length for ``steps × batch_size`` sequences.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from sseq import models, recall_tasks
from sseq.experiments.recall import logs_of, plot_band, train_on_task

DESCRIPTION = "Induction heads: train short, test up to 16x longer; absolute, RoPE, Mamba"
PREFIX_STEPS = 100
RECORDS = ("step", "loss", "token_acc")
LABELS = {"transformer": "Transformer (absolute)", "transformer_rope": "Transformer (RoPE)",
          "mamba": "Mamba", "hybrid": "Hybrid (Mamba, attention, Mamba)"}
HYBRID = ("mamba", "attention", "mamba")


@dataclass(frozen=True)
class Config:
    """The full run; ``QUICK`` is a smaller one."""

    n_symbols: int = 16
    train_length: int = 32
    test_lengths: tuple = (16, 32, 64, 128, 256, 512)
    d_model: int = 32
    d_state: int = 8
    steps: int = 800
    batch_size: int = 32
    lr: float = 2e-3
    eval_every: int = 100
    n_eval: int = 256
    families: tuple = ("transformer", "transformer_rope", "mamba", "hybrid")


QUICK = Config(steps=100, eval_every=50, n_eval=64, test_lengths=(32, 128),
               families=("transformer_rope", "mamba"))


def jobs(config: Config, seeds) -> list[dict]:
    """One run per (family, seed)."""
    return [{"family": f, "seed": s} for f in config.families for s in seeds]


def build(config: Config, family: str, seed: int):
    """A model of ``family`` (``"hybrid"``: :data:`HYBRID`), initialised from ``seed``."""
    kind = HYBRID if family == "hybrid" else family
    return models.build(kind, config.n_symbols + 2, d_model=config.d_model,
                        d_state=config.d_state, seed=seed)


def run_job(config: Config, job: dict, steps: int | None = None) -> dict:
    """Train one model; its log, and ``length_acc``: the accuracy at each test length."""
    sample = partial(recall_tasks.induction_heads, length=config.train_length,
                     n_symbols=config.n_symbols)
    eval_set = sample(config.n_eval, seed=1)
    model = build(config, job["family"], job["seed"])
    log = train_on_task(model, lambda n, g: sample(n, seed=g), eval_set,
                        steps=steps or config.steps, batch_size=config.batch_size,
                        lr=config.lr, seed=job["seed"], eval_every=config.eval_every)
    log["length_acc"] = [recall_tasks.sequence_accuracy(model, *recall_tasks.induction_heads(
        config.n_eval, n, n_symbols=config.n_symbols, seed=2), batch_size=64)[0]
        for n in config.test_lengths]
    return log


def summarize(config: Config, runs: list[dict]) -> dict:
    """Per family: parameters, and the mean and range over seeds of the accuracy at each
    test length."""
    out = {}
    for family in config.families:
        by_length = list(zip(*(r["log"]["length_acc"] for r in runs
                               if r["family"] == family), strict=True))
        out[family] = {"parameters": models.count_parameters(build(config, family, 0)),
                       "length_mean": [sum(a) / len(a) for a in by_length],
                       "length_min": [min(a) for a in by_length],
                       "length_max": [max(a) for a in by_length]}
    return out


# --- reading the stored results -----------------------------------------------------------------


def plot_lengths(ax, results: dict, families=None):
    """Accuracy against the test length (log scale), the training length marked."""
    config = results["config"]
    for family in families or config["families"]:
        logs = logs_of(results, family=family)
        plot_band(ax, config["test_lengths"], [log["length_acc"] for log in logs],
                  family=family, label=LABELS[family])
    ax.axvline(config["train_length"], color="0.5", ls=":", lw=1, label="training length")
    ax.axhline(1 / config["n_symbols"], color="0.3", ls=":", lw=1, label="chance")
    ax.set_xscale("log", base=2)
    ax.set(xlabel="sequence length (tokens)", ylabel="answer accuracy", ylim=(-0.02, 1.02),
           title="Induction heads: train short, test long")
    return ax
