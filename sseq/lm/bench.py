"""``python -m sseq.bench lm``: how fast the chapter's language models train on this machine.

Two tables, one thread (as the experiments train):

1. **Throughput** of a full training step (forward, loss, backward, clipping, AdamW) for the
   GPT, the LSTM and the Mamba LM of the chapter at about 0.8 M parameters each, on batches of
   12 windows of 64 characters: milliseconds per step, characters per second, and the FLOP
   rate that :mod:`sseq.lm.flops` implies. The Mamba LM trains through the fused ``"cpu"``
   selective scan (``backend="auto"``).
2. **Beside nanoGPT** (with ``--nanogpt PATH``, a clone of github.com/karpathy/nanoGPT): the
   book's GPT and nanoGPT's ``model.py`` at nanoGPT's CPU setting for Tiny Shakespeare (4
   layers, 4 heads, width 128, context 64, batch 12, no dropout, no biases), the same optimizer
   and the same batch. nanoGPT is imported from that path for this table only; nothing of it is
   part of the package.

The models take turns step by step, so that a busy machine slows them alike; medians and the
ratio of each step to nanoGPT's step of the same turn are what to compare.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import statistics
import time
from pathlib import Path

import torch

from sseq.bench import Timing, format_table
from sseq.lm.corpus import get_batch, shakespeare
from sseq.lm.flops import train_step_flops
from sseq.lm.gpt import GPT
from sseq.lm.lstm import LSTMLM
from sseq.lm.mamba_lm import MambaLM
from sseq.lm.training import TrainConfig, lm_loss, make_optimizer

__all__ = ["interleaved", "load_nanogpt", "main", "training_step"]

BATCH, CONTEXT, VOCAB = 12, 64, 65


def training_step(model: torch.nn.Module, loss_fn, config: TrainConfig | None = None):
    """A function of no arguments that runs one training step of ``model`` on ``loss_fn()``
    (the recipe's AdamW and clipping; default :class:`~sseq.lm.TrainConfig`)."""
    config = config or TrainConfig()
    optimizer = make_optimizer(model, config)

    def step():
        loss = loss_fn()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip, foreach=True)
        optimizer.step()

    return step


def interleaved(fns: dict, *, repeat: int, warmup: int = 2) -> dict[str, Timing]:
    """Time each function of ``fns`` ``repeat`` times, taking turns; seconds per call."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    runs = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            runs[name].append(time.perf_counter() - start)
    out = {}
    for name, r in runs.items():
        q = statistics.quantiles(r, n=4) if len(r) > 1 else [r[0]] * 3
        out[name] = Timing(statistics.median(r), q[0], q[2], tuple(r))
    return out


def load_nanogpt(path) -> torch.nn.Module:
    """nanoGPT's GPT at its CPU setting, from ``model.py`` in a clone at ``path``."""
    file = Path(path) / "model.py"
    if not file.exists():
        raise FileNotFoundError(f"no model.py in {path}: pass a clone of karpathy/nanoGPT")
    spec = importlib.util.spec_from_file_location("nanogpt_model", file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.GPTConfig(block_size=CONTEXT, vocab_size=VOCAB, n_layer=4, n_head=4,
                              n_embd=128, dropout=0.0, bias=False)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its parameter count
        return module.GPT(config)


def _models():
    torch.manual_seed(0)
    return {"GPT (4 × 128)": GPT(VOCAB, CONTEXT, 4, 4, 128),
            "LSTM (2 × 224)": LSTMLM(VOCAB, 224, 2),
            "Mamba (7 × 128, cpu scan)": MambaLM(VOCAB, 128, 7)}


def throughput_rows(repeat: int) -> list[dict]:
    x, y = get_batch(shakespeare().train, BATCH, CONTEXT, torch.Generator().manual_seed(0))
    models = _models()
    steps = {name: training_step(m, lambda m=m: lm_loss(m(x), y)) for name, m in models.items()}
    timings = interleaved(steps, repeat=repeat)
    rows = []
    for name, model in models.items():
        t = timings[name]
        flops = train_step_flops(model, BATCH, CONTEXT)
        n = sum(p.numel() for p in model.parameters())
        rows.append({"model": name, "parameters": f"{n:,}", "ms / step": 1e3 * t.median,
                     "IQR (ms)": f"{1e3 * t.q25:.0f}–{1e3 * t.q75:.0f}",
                     "chars / s": f"{BATCH * CONTEXT / t.median:,.0f}",
                     "GFLOP / step": flops / 1e9, "GFLOP/s": flops / t.median / 1e9})
    return rows


def nanogpt_rows(path, repeat: int) -> list[dict]:
    x, y = get_batch(shakespeare().train, BATCH, CONTEXT, torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    ours, theirs = GPT(VOCAB, CONTEXT, 4, 4, 128), load_nanogpt(path)
    steps = {"sseq.lm.GPT": training_step(ours, lambda: lm_loss(ours(x), y)),
             "nanoGPT model.py": training_step(theirs, lambda: theirs(x, y)[1])}
    timings = interleaved(steps, repeat=repeat)
    base = timings["nanoGPT model.py"].runs
    return [{"model": name, "parameters": f"{sum(p.numel() for p in m.parameters()):,}",
             "ms / step": 1e3 * timings[name].median,
             "IQR (ms)": f"{1e3 * timings[name].q25:.0f}–{1e3 * timings[name].q75:.0f}",
             # each step divided by nanoGPT's step of the same turn: a busy moment slows both
             "time / nanoGPT's (median of turns)": statistics.median(
                 a / b for a, b in zip(timings[name].runs, base, strict=True))}
            for name, m in (("sseq.lm.GPT", ours), ("nanoGPT model.py", theirs))]


def main(args) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        repeat = 5 if args.quick else 30
        print(f"Training steps, batch {BATCH} × context {CONTEXT}, one thread, {repeat} "
              f"steps each, taking turns (median)\n")
        print(format_table(throughput_rows(repeat)))
        path = getattr(args, "nanogpt", None)
        if path:
            print("\nBeside nanoGPT's model.py at its CPU setting (same batch, same AdamW)\n")
            print(format_table(nanogpt_rows(path, repeat)))
        else:
            print("\n(pass --nanogpt PATH, a clone of karpathy/nanoGPT, to time its model.py "
                  "beside the book's GPT)")
    finally:
        torch.set_num_threads(threads)
