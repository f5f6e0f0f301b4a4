"""Multi-query associative recall (Arora et al., 2023, "Zoology") in miniature.

Sequences of ``length`` tokens open with ``n_pairs`` key–value pairs; each key comes back
once as a query, and the model must say its value (:func:`sseq.recall_tasks.mqar`). Two
sweeps, each for a Transformer and a Mamba of the same width:

* **pairs**: ``n_pairs`` in ``pairs`` at width ``d_model``;
* **width**: width in ``widths`` at ``width_pairs`` pairs — a Mamba layer's state is
  ``2 · width · d_state`` numbers, so its state grows with the width.

Every point is trained at each learning rate in ``lrs`` (Zoology sweeps the learning rate
and reports the best) and each seed. The score is the held-out
accuracy over all queries.

    python -m sseq.experiments mqar --jobs 2

Zoology's models have 2 layers, widths 64 – 512, sequences of 64 – 512 tokens, and train
for many epochs on the order of 100 k sequences; these see ``steps × batch_size``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from sseq import models, recall_tasks
from sseq.experiments.recall import logs_of, plot_band, train_on_task

DESCRIPTION = "MQAR: Transformer vs Mamba; accuracy vs pairs and width, two learning rates"
PREFIX_STEPS = 100
RECORDS = ("step", "loss", "token_acc", "seq_acc")
LABELS = {"transformer": "Transformer", "mamba": "Mamba",
          "hybrid": "Hybrid (Mamba, attention, Mamba)"}  # the hybrid: not in the full run
HYBRID = ("mamba", "attention", "mamba")


@dataclass(frozen=True)
class Config:
    """The full run; ``QUICK`` is a smaller one."""

    length: int = 48
    vocab_size: int = 64
    d_model: int = 32       # the pairs sweep's width
    pairs: tuple = (2, 4, 8)
    width_pairs: int = 8    # the width sweep's pairs
    widths: tuple = (16, 32, 64)
    d_state: int = 8
    lrs: tuple = (1e-3, 3e-3)
    steps: int = 300
    batch_size: int = 32
    eval_every: int = 100
    n_eval: int = 256
    families: tuple = ("transformer", "mamba")


QUICK = Config(steps=100, eval_every=50, n_eval=64, pairs=(4,), widths=(32,), lrs=(3e-3,),
               families=("transformer", "mamba"))


def points(config: Config) -> list[tuple[int, int]]:
    """The ``(n_pairs, width)`` points of both sweeps, each once."""
    pts = [(p, config.d_model) for p in config.pairs]
    return pts + [(config.width_pairs, w) for w in config.widths
                  if (config.width_pairs, w) not in pts]


def jobs(config: Config, seeds) -> list[dict]:
    """One run per (family, point, learning rate, seed)."""
    return [{"family": f, "n_pairs": p, "d_model": w, "lr": lr, "seed": s}
            for f in config.families for p, w in points(config) for lr in config.lrs
            for s in seeds]


def build(config: Config, family: str, d_model: int, seed: int):
    """A model of ``family`` (``"hybrid"``: :data:`HYBRID`) of width ``d_model``."""
    kind = HYBRID if family == "hybrid" else family
    return models.build(kind, config.vocab_size, d_model=d_model, d_state=config.d_state,
                        seed=seed)


def run_job(config: Config, job: dict, steps: int | None = None) -> dict:
    """Train one model on MQAR with ``job["n_pairs"]`` pairs; its log."""
    sample = partial(recall_tasks.mqar, length=config.length, n_pairs=job["n_pairs"],
                     vocab_size=config.vocab_size)
    eval_set = sample(config.n_eval, seed=1)
    model = build(config, job["family"], job["d_model"], job["seed"])
    return train_on_task(model, lambda n, g: sample(n, seed=g), eval_set,
                         steps=steps or config.steps, batch_size=config.batch_size,
                         lr=job["lr"], seed=job["seed"], eval_every=config.eval_every)


def summarize(config: Config, runs: list[dict]) -> dict:
    """Per family and point ``"pairs=P,width=W"``: parameters, the final query accuracy at each
    learning rate (mean, min, max over seeds) and the best learning rate's."""
    out = {}
    for family in config.families:
        for p, w in points(config):
            entry = {"n_pairs": p, "d_model": w,
                     "parameters": models.count_parameters(build(config, family, w, 0))}
            for lr in config.lrs:
                accs = [r["log"]["token_acc"][-1] for r in runs if r["family"] == family
                        and r["n_pairs"] == p and r["d_model"] == w and r["lr"] == lr]
                entry[f"lr={lr:g}"] = {"mean": sum(accs) / len(accs), "min": min(accs),
                                       "max": max(accs), "seeds": accs}
            best = max(config.lrs, key=lambda lr: entry[f"lr={lr:g}"]["mean"])
            entry["best_lr"], entry["best"] = best, entry[f"lr={best:g}"]
            out.setdefault(family, {})[f"pairs={p},width={w}"] = entry
    return out


# --- reading the stored results -----------------------------------------------------------------


def best_runs(results: dict, family: str, n_pairs: int, d_model: int) -> list[float]:
    """The final query accuracy of each seed at the point's best learning rate."""
    entry = results["summary"][family][f"pairs={n_pairs},width={d_model}"]
    return entry["best"]["seeds"]


def plot_sweep(ax, results: dict, over: str = "pairs"):
    """Query accuracy (best learning rate; mean and range over seeds) against the number of
    pairs (``over="pairs"``) or the width (``over="widths"``)."""
    config = results["config"]
    xs = config["pairs"] if over == "pairs" else config["widths"]
    for family in config["families"]:
        points = [(x, config["d_model"]) if over == "pairs" else (config["width_pairs"], x)
                  for x in xs]
        ys = [best_runs(results, family, p, w) for p, w in points]  # (points, seeds)
        plot_band(ax, xs, list(zip(*ys, strict=True)), family=family, label=LABELS[family])
    ax.axhline(2 / config["vocab_size"], color="0.3", ls=":", lw=1, label="chance")
    plateau = [1 / x for x in xs] if over == "pairs" else [1 / config["width_pairs"]] * len(xs)
    ax.plot(xs, plateau, color="0.5", ls="--", lw=1, label="a random value from the context")
    ax.set_xscale("log", base=2)
    ax.set_xticks(xs, [str(x) for x in xs])
    if over == "pairs":
        ax.set(xlabel="key–value pairs", title=f"MQAR at width {config['d_model']}")
    else:
        ax.set(xlabel="width d (Mamba state: 2·d·N per layer)",
               title=f"MQAR with {config['width_pairs']} pairs")
    ax.set(ylabel="queries answered", ylim=(-0.02, 1.02))
    return ax


def lr_table(results: dict) -> list[dict]:
    """Rows: family, pairs, width, the model's parameters, and the mean accuracy (range over
    seeds) at each learning rate. A wider model has more parameters as well as a larger state,
    so the width sweep changes both."""
    rows = []
    for family, points in results["summary"].items():
        for entry in points.values():
            row = {"model": LABELS[family], "pairs": entry["n_pairs"], "width": entry["d_model"],
                   "parameters": f"{entry['parameters']:,}"}
            for lr in results["config"]["lrs"]:
                acc = entry[f"lr={lr:g}"]
                row[f"lr {lr:g}"] = f"{acc['mean']:.0%} ({acc['min']:.0%}–{acc['max']:.0%})"
            rows.append(row)
    return rows


def plot_learning(ax, results: dict):
    """Query accuracy against training sequences seen, for each family (mean, range)."""
    config = results["config"]
    for family in config["families"]:
        logs = logs_of(results, family=family)
        plot_band(ax, logs[0]["examples"], [log["token_acc"] for log in logs], family=family,
                  label=LABELS[family])
    ax.axhline(1 / config["pairs"][0], color="0.3", ls=":", lw=1,
               label="a random value from the context")
    ax.set(xlabel="training sequences seen", ylabel="queries answered", ylim=(-0.02, 1.02),
           title=f"MQAR, {config['pairs'][0]} pairs, width {config['d_model']}")
    return ax
