"""One training loop for every language model of the chapter, and the loss it reports.

The objective is the negative log-likelihood of each next token, averaged over positions:

    L = −(1 / T) Σ_t log p(x_{t+1} | x_≤t)        in nats per character

(bits per character: L / ln 2; perplexity: e^L, the number of equally likely characters the
model is as unsure as). Every position of a window is a prediction with a known answer — the
next character of the text — so one window of l characters gives l training signals at once
(*teacher forcing*: the model always reads the true past, never its own guesses).

:func:`train_lm` is nanoGPT's recipe: AdamW (weight decay on matrices and embeddings only),
a linear warm-up then a cosine decay of the learning rate, gradient clipping; random windows
of the training text (:func:`sseq.lm.corpus.get_batch`). It records the training loss, the
validation loss on a fixed set of windows, the tokens and FLOPs spent and the wall time.

Shapes: ``b`` batch, ``l`` context, ``v`` vocabulary.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from sseq.lm.corpus import Corpus, eval_windows, get_batch, shakespeare

__all__ = ["TrainConfig", "bits_per_char", "evaluate", "learning_rate", "lm_loss",
           "make_optimizer", "perplexity", "train_lm"]


def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of next-token logits ``(b, l, v)`` against targets ``(b, l)``: nats."""
    if logits.ndim != 3 or logits.shape[:2] != targets.shape:
        raise ValueError(f"logits must have shape (b, l, v) with (b, l) = "
                         f"{tuple(targets.shape)}, got {tuple(logits.shape)}")
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def bits_per_char(nats: float) -> float:
    """A loss in nats per character, in bits per character: nats / ln 2."""
    return nats / math.log(2)


def perplexity(nats: float) -> float:
    """e^loss: the size of a uniform choice that would be as uncertain."""
    return math.exp(nats)


@torch.no_grad()
def evaluate(model, split: str = "val", *, context: int = 64, corpus: Corpus | None = None,
             max_windows: int | None = None, batch_size: int = 64) -> float:
    """The mean next-token loss of ``model`` on a split, in nats per character.

    The split is cut into consecutive windows of ``context`` tokens (every character scored
    once, each with the part of its window before it as context: the quantity that nanoGPT's
    random windows estimate).

    Args:
        model: maps ``(b, l)`` ids to logits ``(b, l, v)``.
        split: ``"train"`` or ``"val"``.
        context: window length l (at most the model's ``context``, if it has one).
        corpus: default :func:`sseq.lm.shakespeare`.
        max_windows: score this many windows spread evenly over the split (None: all).
        batch_size: windows per forward pass.
    """
    corpus = corpus or shakespeare()
    limit = getattr(model, "context", None)
    if limit is not None and context > limit:
        raise ValueError(f"context must be at most the model's context = {limit}, got {context}")
    x, y = eval_windows(corpus.split(split), context)                # (n, l) each
    if max_windows is not None and max_windows < len(x):
        pick = torch.linspace(0, len(x) - 1, max_windows).round().long()
        x, y = x[pick], y[pick]
    was_training = model.training
    model.eval()
    total = 0.0
    for i in range(0, len(x), batch_size):
        logits = model(x[i:i + batch_size])
        total += lm_loss(logits, y[i:i + batch_size]).item() * len(logits)
    model.train(was_training)
    return total / len(x)


@dataclass(frozen=True)
class TrainConfig:
    """nanoGPT's recipe for Tiny Shakespeare at its CPU setting (defaults)."""

    steps: int = 2000
    batch_size: int = 12
    context: int = 64
    lr: float = 1e-3            # peak learning rate
    min_lr: float = 1e-4        # where the cosine ends
    warmup: int = 100           # steps of linear warm-up
    weight_decay: float = 0.1   # on matrices and embeddings only
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0      # largest global gradient norm (0: no clipping)
    eval_every: int = 100       # steps between records
    eval_windows: int = 256     # validation windows per record (spread over the split)
    seed: int = 0               # the batches (the model's initialisation is the caller's)

    def __post_init__(self):
        for name in ("steps", "batch_size", "context", "eval_every", "eval_windows"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not 0 < self.min_lr <= self.lr:
            raise ValueError(f"need 0 < min_lr <= lr, got lr={self.lr}, min_lr={self.min_lr}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {self.seed!r}")


def learning_rate(step: int, config: TrainConfig) -> float:
    """Linear warm-up to ``lr``, then a cosine down to ``min_lr`` at the last step."""
    if step < config.warmup:
        return config.lr * (step + 1) / (config.warmup + 1)
    progress = (step - config.warmup) / max(config.steps - config.warmup, 1)
    cosine = 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
    return config.min_lr + cosine * (config.lr - config.min_lr)


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on the matrices and embeddings (not on biases, norms' gains,
    or parameters flagged ``_no_weight_decay`` such as Mamba's A_log and D)."""
    decay, no_decay = [], []
    for p in model.parameters():  # tied weights appear once
        if not p.requires_grad:
            continue
        (decay if p.ndim >= 2 and not getattr(p, "_no_weight_decay", False)
         else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(config.beta1, config.beta2),
                             foreach=True)


def _step(model, optimizer, x, y, grad_clip) -> float:
    loss = lm_loss(model(x), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip, foreach=True)
    optimizer.step()
    return loss.item()


def train_lm(model: torch.nn.Module, config: TrainConfig | None = None, *,
             corpus: Corpus | None = None, steps: int | None = None,
             flops_per_step: float | None = None, time_budget: float | None = None,
             on_record=None, progress: bool = True) -> dict:
    """Train a language model on random windows of the training text.

    Args:
        model: maps ``(b, l)`` ids to logits ``(b, l, v)``; trained in place.
        config: the recipe (default :class:`TrainConfig`); its ``steps`` set the schedule's
            length.
        corpus: default :func:`sseq.lm.shakespeare`.
        steps: stop after this many steps (default ``config.steps``): a prefix of the full run,
            with the same schedule.
        flops_per_step: training FLOPs of one step (see :mod:`sseq.lm.flops`), recorded as
            cumulative ``flops``; NaN when None.
        time_budget: also stop once training (evaluation excluded) took this many seconds.
        on_record: called as ``on_record(model, record)`` after each record (a dict of the
            values just appended), e.g. to draw a sample; not timed.
        progress: a tqdm bar.

    Returns:
        The history, equal-length lists: ``step``; ``train_loss`` (mean since the previous
        record); ``val_loss`` (``config.eval_windows`` windows); ``lr``; ``tokens``;
        ``flops``; ``seconds`` (training time so far, wall clock) and ``cpu_seconds`` (the
        process's CPU time in those steps: on a shared machine, what the steps cost).
    """
    corpus = corpus or shakespeare()
    config = config or TrainConfig()
    steps = config.steps if steps is None else steps
    optimizer = make_optimizer(model, config)
    batches = torch.Generator().manual_seed(config.seed)
    keys = ("step", "train_loss", "val_loss", "lr", "tokens", "flops", "seconds", "cpu_seconds")
    history = {key: [] for key in keys}
    seconds, cpu_seconds, running, count = 0.0, 0.0, 0.0, 0
    model.train()
    bar = tqdm(range(steps), desc="training", disable=not progress, leave=False)
    for step in bar:
        start, cpu_start = time.perf_counter(), time.process_time()
        lr = learning_rate(step, config)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = get_batch(corpus.train, config.batch_size, config.context, batches)
        running += _step(model, optimizer, x, y, config.grad_clip)
        seconds += time.perf_counter() - start
        cpu_seconds += time.process_time() - cpu_start
        count += 1
        done = step + 1 == steps or (time_budget is not None and seconds >= time_budget)
        if (step + 1) % config.eval_every == 0 or done:
            val = evaluate(model, "val", context=config.context, corpus=corpus,
                           max_windows=config.eval_windows)
            tokens = (step + 1) * config.batch_size * config.context
            flops = math.nan if flops_per_step is None else (step + 1) * flops_per_step
            record = dict(zip(keys, (step + 1, running / count, val, lr, tokens, flops,
                                     seconds, cpu_seconds), strict=True))
            for key, value in record.items():
                history[key].append(value)
            if on_record is not None:
                on_record(model, record)
                model.train()
            bar.set_postfix(train=f"{running / count:.3f}", val=f"{val:.3f}")
            running, count = 0.0, 0
        if done:
            break
    bar.close()
    model.eval()
    return history

