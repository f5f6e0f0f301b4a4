"""Chapter 7: three families of character language models on Tiny Shakespeare, on equal terms.

A GPT (4 layers, 4 heads, width 128: nanoGPT's CPU setting), an LSTM (2 layers, width 224)
and a Mamba LM (7 layers, width 128), each about 0.8 M parameters, are trained by the same loop
(:func:`sseq.lm.train_lm`) on the same batches — 2,000 steps of 12 windows of 64 characters,
AdamW with nanoGPT's warm-up and cosine schedule — and record their validation loss against
steps, tokens, FLOPs and seconds. Every ``sample_steps`` a 200-character sample is drawn from
the same prompt, so the chapter can show what a loss looks like. The full run also scores the
smoothed n-gram models of every order (:class:`sseq.lm.KneserNey`) on both splits, and writes
each seed-0 model to ``sseq/lm/checkpoints/{gpt,lstm,mamba}.pt``.

    python -m sseq.experiments lm --seeds 0 --jobs 2

The learning rate is 2e-3 for all three. nanoGPT's is 1e-3; one more run trains the GPT with it,
so that the chapter can set the two recipes side by side on the full validation split.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from sseq import lm
from sseq.lm.checkpoints import CHECKPOINTS, save_checkpoint

DESCRIPTION = "GPT, LSTM and Mamba character LMs on Tiny Shakespeare; n-gram baselines"
PREFIX_STEPS = 100  # what the test re-runs: the first record of a run
RECORDS = ("step", "train_loss", "val_loss")  # a run's log, one entry per record
PROMPT = "JULIET:\n"


@dataclass(frozen=True)
class Config:
    """The full run; ``QUICK`` is a smaller one."""

    steps: int = 2000
    batch_size: int = 12
    context: int = 64
    lr: float = 2e-3
    min_lr: float = 2e-4
    warmup: int = 100
    eval_every: int = 100
    eval_windows: int = 256
    d_model: int = 128         # GPT and Mamba
    gpt_layers: int = 4
    gpt_heads: int = 4
    lstm_d_model: int = 224    # about as many parameters as the others
    lstm_layers: int = 2
    mamba_layers: int = 7
    d_state: int = 16
    models: tuple = ("gpt", "mamba", "lstm")  # the longest run early: two workers finish sooner
    nanogpt_lr: float = 1e-3   # one more GPT run with nanoGPT's learning rate (0: none)
    sample_steps: tuple = (100, 200, 300, 500, 1000, 2000)
    sample_length: int = 200
    ngram_order: int = 10


QUICK = Config(steps=60, eval_every=20, eval_windows=32, sample_steps=(20, 60), ngram_order=3,
               nanogpt_lr=0.0)


def build(config: Config, model: str, seed: int) -> torch.nn.Module:
    """The model of a run, initialised from its seed."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if model == "gpt":
            return lm.GPT(65, config.context, config.gpt_layers, config.gpt_heads,
                          config.d_model)
        if model == "lstm":
            return lm.LSTMLM(65, config.lstm_d_model, config.lstm_layers)
        if model == "mamba":
            return lm.MambaLM(65, config.d_model, config.mamba_layers, config.d_state)
    raise ValueError(f"model must be 'gpt', 'lstm' or 'mamba', got {model!r}")


def train_config(config: Config, seed: int, lr: float | None = None) -> lm.TrainConfig:
    """The recipe of a run: the config's, or nanoGPT's with ``lr`` (its minimum lr / 10)."""
    lr, min_lr = (config.lr, config.min_lr) if lr is None else (lr, lr / 10)
    return lm.TrainConfig(steps=config.steps, batch_size=config.batch_size,
                          context=config.context, lr=lr, min_lr=min_lr,
                          warmup=config.warmup, eval_every=config.eval_every,
                          eval_windows=config.eval_windows, seed=seed)


def jobs(config: Config, seeds) -> list[dict]:
    """One run per (model, seed); then the GPT with nanoGPT's learning rate, labelled
    ``gpt_nanogpt_lr``."""
    runs = [{"label": m, "model": m, "lr": config.lr, "seed": s}
            for m in config.models for s in seeds]
    if config.nanogpt_lr:
        runs += [{"label": "gpt_nanogpt_lr", "model": "gpt", "lr": config.nanogpt_lr, "seed": s}
                 for s in seeds]
    return runs


def run_job(config: Config, job: dict, steps: int | None = None) -> dict:
    """Train one model. Its log: the records of :func:`sseq.lm.train_lm`, the samples drawn
    at ``sample_steps`` and, for a whole run, the loss on the full validation split."""
    model = build(config, job["model"], job["seed"])
    corpus = lm.shakespeare()
    samples = {"step": [], "val_loss": [], "text": []}

    def sample(model, record):
        if record["step"] in config.sample_steps:
            text = lm.generate(model, PROMPT, config.sample_length, seed=0,
                               tokenizer=corpus.tokenizer)
            for key, value in (("step", record["step"]), ("val_loss", record["val_loss"]),
                               ("text", text)):
                samples[key].append(value)

    flops = lm.train_step_flops(model, config.batch_size, config.context)
    recipe = train_config(config, job["seed"], job["lr"])
    log = lm.train_lm(model, recipe, corpus=corpus, steps=steps,
                      flops_per_step=flops, on_record=sample, progress=False)
    log["samples"] = samples
    log["parameters"] = sum(p.numel() for p in model.parameters())
    if steps is None:
        log["final_val_loss"] = lm.evaluate(model, "val", context=config.context)
        if config == Config() and job["seed"] == 0 and job["label"] in config.models:
            save_checkpoint(model, CHECKPOINTS / f"{job['model']}.pt", corpus.tokenizer,
                            recipe=asdict(recipe), context=config.context,
                            val_loss=log["final_val_loss"], train_seconds=log["seconds"][-1],
                            train_cpu_seconds=log["cpu_seconds"][-1])
    return log


def ngram_losses(order: int) -> dict:
    """Validation and training loss of the Kneser–Ney models of order 0..``order``."""
    corpus = lm.shakespeare()
    model = lm.KneserNey(order, corpus.tokenizer.vocab_size).fit(corpus.train)
    orders = list(range(order + 1))
    return {"order": orders,
            "val": [float(-np.mean(model.log_prob(corpus.val, n))) for n in orders],
            "train": [float(-np.mean(model.log_prob(corpus.train, n))) for n in orders]}


def summarize(config: Config, runs: list[dict]) -> dict:
    """Per run label: final validation loss (full split, seed by seed), parameters, FLOPs and
    seconds; and the n-gram losses."""
    out = {}
    for run in runs:
        entry = out.setdefault(run["label"], {"final_val_loss": [], "train_seconds": [],
                                              "train_cpu_seconds": []})
        entry["final_val_loss"].append(run["log"].get("final_val_loss"))
        entry["train_seconds"].append(run["log"]["seconds"][-1])
        entry["train_cpu_seconds"].append(run["log"]["cpu_seconds"][-1])
        entry["parameters"] = run["log"]["parameters"]
        entry["flops"] = run["log"]["flops"][-1]
    return {"models": out, "ngram": ngram_losses(config.ngram_order)}


# --- reading the stored results -----------------------------------------------------------------

LABELS = {"gpt": "GPT (Transformer)", "lstm": "LSTM", "mamba": "Mamba",
          "gpt_nanogpt_lr": "GPT, nanoGPT's lr 1e-3"}
NGRAM_LINES = (2, 5)  # orders drawn as reference lines, with the best order


def _color(label: str):
    from sseq.viz import PALETTE

    return {"gpt": PALETTE["attention"], "lstm": PALETTE["extra2"], "mamba": PALETTE["state"],
            "gpt_nanogpt_lr": PALETTE["theory"]}[label]


def run_log(results: dict, label: str, seed: int | None = None) -> dict:
    """The log of the run with this label (and seed; default the first)."""
    for run in results["runs"]:
        if run["label"] == label and (seed is None or run["seed"] == seed):
            return run["log"]
    raise ValueError(f"no run labelled {label!r} in these results")


def best_ngram(results: dict) -> tuple[int, float]:
    """The order of the best n-gram model on the validation split, and its loss."""
    ngram = results["summary"]["ngram"]
    i = min(range(len(ngram["val"])), key=ngram["val"].__getitem__)
    return ngram["order"][i], ngram["val"][i]


def plot_loss_vs_compute(ax, results: dict, x: str = "flops", labels=None):
    """Validation loss against training compute (``x="flops"``, in TFLOP), wall seconds
    (``"seconds"``) or CPU seconds (``"cpu_seconds"``), with the n-gram models as lines."""
    from matplotlib.ticker import NullFormatter

    from sseq.viz import PALETTE

    labels = labels or [lab for lab in LABELS if any(r["label"] == lab for r in results["runs"])]
    scale = 1e12 if x == "flops" else 1.0
    for label in labels:
        log = run_log(results, label)
        ax.plot([v / scale for v in log[x]], log["val_loss"], color=_color(label),
                label=LABELS[label], linestyle="--" if label == "gpt_nanogpt_lr" else "-")
    ngram = results["summary"]["ngram"]
    n_best, _ = best_ngram(results)
    for n, style in zip((*NGRAM_LINES, n_best), (":", (0, (5, 3)), "-."), strict=True):
        ax.axhline(ngram["val"][n], color=PALETTE["reference"], lw=0.9, linestyle=style,
                   label=f"Kneser–Ney {n}-gram")
    ax.set_xscale("log")
    lo, hi = ax.get_xlim()
    ticks = [t * 10.0**e for e in range(-2, 5) for t in (1, 2, 5) if lo <= t * 10.0**e <= hi]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    xlabel = {"flops": "training compute (TFLOP)", "seconds": "training time, wall clock (s)",
              "cpu_seconds": "training time, one core (CPU s)"}[x]
    ax.set(xlabel=xlabel, ylabel="validation loss (nats / char)",
           title="Validation loss against " + ("compute" if x == "flops" else "time"))
    return ax


def samples(results: dict, label: str = "gpt") -> list[tuple[int, float, str]]:
    """The samples drawn during one run: ``(step, validation loss, text)``."""
    s = run_log(results, label)["samples"]
    return list(zip(s["step"], s["val_loss"], s["text"], strict=True))
