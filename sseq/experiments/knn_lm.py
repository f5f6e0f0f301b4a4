"""The kNN-LM on Tiny Shakespeare: Chapter 7's GPT, with its training text as a datastore.

The shipped GPT checkpoint (:func:`sseq.lm.load_pretrained`) maps every training context to
the vector its head reads (:func:`sseq.memory_aug.knn_lm.lm_features`, windows of 64
characters as in training). The windows are shuffled once (seed ``subset_seed``) and the
first ``N`` positions in that order, with the character that followed each, are the
datastore: every size is a random sample of the whole training text (nested, so a larger
datastore holds the smaller ones), not its beginning, which would leave out the play the
validation text continues until the last size. The first ``n_val`` validation characters
are the queries: the ``k`` nearest keys (exact search) vote for the next character, and the
vote is mixed with the GPT's own distribution with weight λ (Khandelwal et al., 2020).

The queries are split in two halves: the temperature T and λ are chosen on the first
(``tune``) and the loss is reported on the second (``test``), so the gain is not fitted to
the numbers it is measured on. The search is exact and the sample fixed by
``subset_seed``: one run, whatever the seeds.

    python -m sseq.experiments knn_lm
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from sseq.memory_aug import knn_lm

DESCRIPTION = "kNN-LM: validation loss of Chapter 7's GPT against datastore size and λ"
PREFIX_STEPS = 1  # what the test re-runs: the smallest datastore
RECORDS = ("size", "tune", "test")


@dataclass(frozen=True)
class Config:
    """The full run; ``QUICK`` is a smaller one."""

    model: str = "gpt"
    context: int = 64
    n_val: int = 8192  # validation characters queried (two halves: tune, test)
    sizes: tuple = (3_000, 10_000, 30_000, 100_000, 300_000, 1_003_840)  # the last: all
    k: int = 32
    temperatures: tuple = (0.3, 1.0, 3.0, 10.0, 30.0)
    subset_seed: int = 0  # the shuffle of the training windows the datastores are cut from
    lambdas: tuple = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)


QUICK = Config(n_val=1024, sizes=(3_000, 30_000))


def jobs(config: Config, seeds) -> list[dict]:
    """One run: the model is trained and the search exact, so there is nothing to seed."""
    return [{"model": config.model}]


def _losses(config, distances, values, logits, targets) -> list[list[float]]:
    """The loss (nats/char) for each temperature (rows) and λ (columns)."""
    grid = []
    for T in config.temperatures:
        p = knn_lm.knn_distribution(distances, values, logits.shape[-1], T)
        grid.append([float(torch.nn.functional.nll_loss(knn_lm.interpolate(logits, p, lam),
                                                        targets)) for lam in config.lambdas])
    return grid


def _windows(config: Config, n_train: int, size: int) -> torch.Tensor:
    """The training windows the first ``size`` datastore entries come from, in shuffled order."""
    n = (n_train - 1) // config.context
    order = torch.randperm(n, generator=torch.Generator().manual_seed(config.subset_seed))
    return order[:-(-size // config.context)]


@torch.no_grad()
def run_job(config: Config, job: dict, steps: int | None = None) -> dict:
    """Build the datastore and score the queries. The log has, for each datastore ``size``,
    the loss grid (temperature × λ) on the ``tune`` and on the ``test`` half, and the
    seconds spent on features and on search."""
    from sseq import lm

    corpus, model = lm.shakespeare(), lm.load_pretrained(job["model"])
    sizes = config.sizes[:steps] if steps else config.sizes
    start = time.perf_counter()
    queries, targets, logits = knn_lm.lm_features(model, corpus.val[:config.n_val + 1],
                                                  config.context)
    keys, values, _ = knn_lm.lm_features(model, corpus.train, config.context,
                                         windows=_windows(config, len(corpus.train), sizes[-1]))
    keys, values = keys[:sizes[-1]], values[:sizes[-1]]
    feature_seconds = time.perf_counter() - start
    found = knn_lm.nearest_by_size(queries, keys, config.k, sizes)
    half = len(queries) // 2
    log = {"size": list(sizes), "tune": [], "test": [], "n_queries": [half, len(queries) - half],
           "feature_seconds": feature_seconds,
           "search_seconds": time.perf_counter() - start - feature_seconds}
    for distances, indices in found:
        for name, part in (("tune", slice(0, half)), ("test", slice(half, None))):
            log[name].append(_losses(config, distances[part], values[indices[part]],
                                     logits[part], targets[part]))
    return log


def best(config: Config, grid) -> tuple[int, int]:
    """The (temperature, λ) indices of the smallest loss in a grid."""
    flat = [(v, i, j) for i, row in enumerate(grid) for j, v in enumerate(row)]
    _, i, j = min(flat)
    return i, j


def summarize(config: Config, runs: list[dict]) -> dict:
    """Per datastore size: T and λ chosen on the tune half, and the test half's loss with
    them, beside the GPT alone (λ = 0)."""
    log = runs[0]["log"]
    lm_alone = config.lambdas.index(0.0)
    out = {"size": log["size"], "temperature": [], "lambda": [], "test_loss": [],
           "test_loss_lm": log["test"][0][0][lm_alone]}
    for tune, test in zip(log["tune"], log["test"], strict=True):
        i, j = best(config, tune)
        out["temperature"].append(config.temperatures[i])
        out["lambda"].append(config.lambdas[j])
        out["test_loss"].append(test[i][j])
    return out


# --- reading the stored results -----------------------------------------------------------------


def plot_size(ax, results: dict):
    """Test loss against datastore size (log axis), with the GPT alone as a line."""
    from sseq.viz import PALETTE

    s = results["summary"]
    ax.plot(s["size"], s["test_loss"], "o-", color=PALETTE["attention"],
            label="GPT + kNN (T, λ tuned on the other half)")
    ax.axhline(s["test_loss_lm"], color=PALETTE["reference"], linestyle="--", label="GPT alone")
    ax.set(xscale="log", xlabel="datastore size N (training characters)",
           ylabel="validation loss (nats/char)", title="More memory, lower loss")
    return ax


def plot_lambda(ax, results: dict, sizes=None):
    """Test loss against λ, one curve per datastore size, at the temperature tuned for it."""
    import matplotlib as mpl

    config, log, s = results["config"], results["runs"][0]["log"], results["summary"]
    sizes = sizes or log["size"]
    cmap = mpl.colormaps["viridis"]
    shown = [n for n, size in enumerate(log["size"]) if size in sizes]
    for rank, n in enumerate(shown):  # the shown sizes spread over the whole colour map
        i = config["temperatures"].index(s["temperature"][n])
        ax.plot(config["lambdas"], log["test"][n][i],
                color=cmap(rank / max(1, len(shown) - 1)), label=f"N = {log['size'][n]:,}")
    ax.set(xlabel="interpolation weight λ", ylabel="validation loss (nats/char)",
           title="How much to trust the neighbours", ylim=(None, s["test_loss_lm"] + 0.3))
    return ax
