"""The NTM's copy task (Graves et al., 2014, §4.1): external memory against a running state.

A Neural Turing Machine (:mod:`sseq.memory_aug.ntm_model`: an LSTM controller, one read and
one write head, 32 slots of width 12) and an LSTM with as many parameters are trained on
:func:`sseq.memory_aug.copy_task` with strings of 1 to ``train_length`` random 8-bit vectors,
then asked to copy strings of every length in ``eval_lengths`` — up to three times longer
than any seen in training. The NTM can write one vector to each slot and read them back in
order; the LSTM must hold every bit in its 2 · d numbers of state.

Each (model, seed) is one run: Adam with gradients clipped at norm 10, a string length drawn
uniformly at every step; the LSTM, 20 times cheaper per step, is trained 5 times longer.

    python -m sseq.experiments ntm_copy
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from sseq.memory_aug import copy_accuracy, copy_loss, copy_task
from sseq.memory_aug.ntm_model import NTM

DESCRIPTION = "NTM vs LSTM of equal parameters on the copy task: accuracy against length"
PREFIX_STEPS = 250  # what the test re-runs: the first record of the first NTM run
RECORDS = ("step", "loss", "eval_bits")
# the full run's seed-0 models, for the chapter to look inside (about 110 kB each)
CHECKPOINTS = Path(__file__).resolve().parents[1] / "memory_aug" / "checkpoints"


@dataclass(frozen=True)
class Config:
    """The full run; ``QUICK`` is a smaller one."""

    n_bits: int = 8
    train_length: int = 10  # strings of 1 … train_length vectors in training
    eval_lengths: tuple = (1, 2, 5, 10, 15, 20, 25, 30)
    d_controller: int = 64
    n_slots: int = 32
    slot_width: int = 12
    steps: int = 2000  # the NTM
    lstm_steps: int = 10000
    batch_size: int = 32
    lr: float = 1e-3
    lstm_lr: float = 3e-3
    clip: float = 10.0
    eval_every: int = 250
    n_eval: int = 128
    models: tuple = ("ntm", "lstm")


QUICK = Config(steps=300, lstm_steps=300, eval_every=100, n_eval=32, eval_lengths=(5, 10, 20))


class CopyLSTM(nn.Module):
    """An LSTM and a linear read-out: ``(b, l, d_in)`` → ``(b, l, d_out)``."""

    def __init__(self, d_in: int, d_out: int, d_model: int):
        super().__init__()
        self.lstm = nn.LSTM(d_in, d_model, batch_first=True)
        self.output = nn.Linear(d_model, d_out)

    def forward(self, x):
        return self.output(self.lstm(x)[0])


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def lstm_width(config: Config) -> int:
    """The LSTM width whose parameter count is nearest the NTM's."""
    target = count_parameters(build(config, "ntm", 0))
    i, o = config.n_bits + 1, config.n_bits
    # a width d has more than 4 d² parameters: none past √target can be the nearest
    return min(range(1, math.isqrt(target) + 2),
               key=lambda d: abs(4 * d * (i + d + 2) + d * o + o - target))


def build(config: Config, model: str, seed: int) -> nn.Module:
    """The model of a run, initialised from its seed."""
    torch.manual_seed(seed)
    if model == "ntm":
        return NTM(config.n_bits + 1, config.n_bits, config.d_controller, config.n_slots,
                   config.slot_width)
    if model == "lstm":
        width = lstm_width(config)
        torch.manual_seed(seed)
        return CopyLSTM(config.n_bits + 1, config.n_bits, width)
    raise ValueError(f"model must be 'ntm' or 'lstm', got {model!r}")


def jobs(config: Config, seeds) -> list[dict]:
    return [{"model": m, "seed": s} for m in config.models for s in seeds]


@torch.no_grad()
def evaluate(model, config: Config, length: int) -> dict:
    """Bit and whole-string accuracy on ``n_eval`` held-out strings (the same for every run)."""
    x, y, mask = copy_task(config.n_eval, length, config.n_bits, seed=1_000 + length)
    return copy_accuracy(model(x), y, mask)


def run_job(config: Config, job: dict, steps: int | None = None) -> dict:
    """Train one model. Its log: ``step``, ``loss`` (training, mean since the last record),
    ``eval_bits`` (at ``train_length``), and at the end ``bits`` and ``sequences`` accuracy
    at each of ``eval_lengths`` and the ``parameters``."""
    model = build(config, job["model"], job["seed"])
    total = config.steps if job["model"] == "ntm" else config.lstm_steps
    lr = config.lr if job["model"] == "ntm" else config.lstm_lr
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(10_000 + job["seed"])
    log, losses = {key: [] for key in RECORDS}, []
    for step in range(1, (steps or total) + 1):
        length = int(torch.randint(1, config.train_length + 1, (1,), generator=g))
        x, y, mask = copy_task(config.batch_size, length, config.n_bits, seed=g)
        loss = copy_loss(model(x), y, mask)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), config.clip)
        opt.step()
        losses.append(loss.item())
        if step % config.eval_every == 0:
            log["step"].append(step)
            log["loss"].append(sum(losses) / len(losses))
            log["eval_bits"].append(evaluate(model, config, config.train_length)["bits"])
            losses = []
    if steps is None:
        final = [evaluate(model, config, length) for length in config.eval_lengths]
        log |= {"bits": [f["bits"] for f in final], "sequences": [f["sequences"] for f in final],
                "parameters": count_parameters(model)}
        if config == Config() and job["seed"] == 0:
            CHECKPOINTS.mkdir(exist_ok=True)
            torch.save(model.state_dict(), CHECKPOINTS / f"{job['model']}_copy.pt")
    return log


def load_trained(model: str) -> nn.Module:
    """The full run's seed-0 ``"ntm"`` or ``"lstm"``, trained (in eval mode)."""
    net = build(Config(), model, 0)
    path = CHECKPOINTS / f"{model}_copy.pt"
    if not path.exists():
        raise FileNotFoundError(f"no trained {model!r} at {path}: run "
                                f"'python -m sseq.experiments ntm_copy' first")
    net.load_state_dict(torch.load(path, weights_only=True))
    return net.eval()


def summarize(config: Config, runs: list[dict]) -> dict:
    """Per model: the parameters and the mean over seeds of the bit and string accuracy at
    each evaluated length."""
    out = {}
    for model in config.models:
        logs = [r["log"] for r in runs if r["model"] == model]
        out[model] = {"parameters": logs[0]["parameters"], "steps": logs[0]["step"][-1],
                      "eval_lengths": list(config.eval_lengths)}
        for key in ("bits", "sequences"):
            out[model][key] = [sum(v) / len(v) for v in zip(*(g[key] for g in logs),
                                                             strict=True)]
    return out


# --- reading the stored results -----------------------------------------------------------------

LABELS = {"ntm": "NTM (32 slots × 12)", "lstm": "LSTM, same parameters"}


def plot_accuracy(ax, results: dict, key: str = "bits", seeds=()):
    """Accuracy against string length: the mean over seeds and their range, or, for the
    models in ``seeds``, one line per seed (a mean hides a seed that failed)."""
    import numpy as np

    from sseq.viz import PALETTE

    colors = {"ntm": PALETTE["state"], "lstm": PALETTE["theory"]}
    lengths = results["config"]["eval_lengths"]
    for model in results["config"]["models"]:
        runs = [r for r in results["runs"] if r["model"] == model]
        if model in seeds:
            for run, style in zip(runs, ("o-", "s--", "^:", "d-."), strict=False):
                ax.plot(lengths, run["log"][key], style, color=colors[model], ms=4,
                        label=f"{LABELS[model]}, seed {run['seed']}")
            continue
        acc = np.array([r["log"][key] for r in runs])
        ax.plot(lengths, acc.mean(0), "o-", color=colors[model], label=LABELS[model])
        ax.fill_between(lengths, acc.min(0), acc.max(0), color=colors[model], alpha=0.2, lw=0)
    ax.axvspan(0.5, results["config"]["train_length"] + 0.5, color=PALETTE["reference"],
               alpha=0.1, lw=0, label="lengths seen in training")
    ax.set(xlabel="string length (8-bit vectors)", ylim=(0, 1.02),
           ylabel="bits copied right" if key == "bits" else "strings copied without error",
           title="Copying: external memory against a running state")
    return ax
