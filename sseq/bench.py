"""Timing and memory measurement, and the ``python -m sseq.bench`` command.

The book measures instead of asserting, so these helpers are used both by the
chapters (time per token, cost against length) and by the benchmark tables.
Timings are medians over repeats after warm-up: the median ignores the odd slow
run on a shared machine. Compare two numbers only when they were measured side
by side in one run.

Command line::

    python -m sseq.bench scan              # CPU selective-scan backends
    python -m sseq.bench scan --device cuda  # the Triton kernel on a GPU
    python -m sseq.bench memory            # running state vs attention, per token
    python -m sseq.bench lm [--nanogpt PATH]  # language models' training throughput
"""

from __future__ import annotations

import argparse
import gc
import importlib
import statistics
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["BENCHMARKS", "Benchmark", "Timing", "format_table", "main", "peak_memory", "time_fn"]


@dataclass(frozen=True)
class Timing:
    """Seconds per call: the median and the spread over repeats."""

    median: float
    q25: float
    q75: float
    runs: tuple[float, ...]

    @property
    def ms(self) -> float:
        return 1e3 * self.median


def _sync(device) -> None:
    if device is not None and str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def time_fn(fn: Callable[[], object], *, repeat: int = 7, warmup: int = 1, number: int = 1,
            device=None) -> Timing:
    """Time ``fn()``: ``warmup`` untimed calls, then ``repeat`` timed rounds.

    Args:
        fn: a function of no arguments (close over the inputs).
        repeat: timed rounds (>= 1); the median is reported.
        warmup: untimed calls first (compilation, caches, allocator).
        number: calls per round, for functions too fast to time one by one.
        device: synchronize this CUDA device around each round.

    Returns:
        A :class:`Timing` in seconds per call.
    """
    if repeat < 1 or number < 1 or warmup < 0:
        raise ValueError(f"need repeat >= 1, number >= 1, warmup >= 0; got repeat={repeat}, "
                         f"number={number}, warmup={warmup}")
    for _ in range(warmup):
        fn()
    _sync(device)
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        _sync(device)
        runs.append((time.perf_counter() - start) / number)
    q = statistics.quantiles(runs, n=4) if len(runs) > 1 else [runs[0]] * 3
    return Timing(statistics.median(runs), q[0], q[2], tuple(runs))


def peak_memory(fn: Callable[[], object], *, device=None, interval: float = 5e-4) -> int:
    """Peak extra memory in bytes while ``fn()`` runs.

    On CUDA this is PyTorch's allocator peak above the starting allocation. On
    the CPU it is the peak resident set size above the starting one, sampled
    every ``interval`` seconds by a background thread: an honest but coarse
    figure (allocator caching can hide small allocations).
    """
    if device is not None and str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return max(0, torch.cuda.max_memory_allocated() - base)
    import psutil

    process = psutil.Process()
    gc.collect()
    base = process.memory_info().rss
    peak = [base]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        fn()
    finally:
        done.set()
        sampler.join()
    peak[0] = max(peak[0], process.memory_info().rss)
    return max(0, peak[0] - base)


def format_table(rows: Sequence[dict], columns: Sequence[str] | None = None) -> str:
    """Format dicts as a Markdown table (floats to 3 significant digits)."""
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0].keys())

    def cell(v):
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1e4 else f"{v:,.0f}"
        return str(v)

    body = [[cell(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(b[i]) for b in body)) for i, c in enumerate(columns)]
    fmt = "| " + " | ".join(f"{{:<{w}}}" for w in widths) + " |"
    lines = [fmt.format(*columns), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += [fmt.format(*b) for b in body]
    return "\n".join(lines)


@dataclass(frozen=True)
class Benchmark:
    """A benchmark of ``python -m sseq.bench``: what it measures, and for each device it runs
    on, its ``main(args)`` as ``"module:function"``."""

    description: str
    targets: dict[str, str]


BENCHMARKS = {
    "scan": Benchmark(
        "the selective scan's backends at Mamba-sized shapes: on cpu, reference, parallel and "
        "cpu side by side (ms forward and forward+backward, peak memory, error against the "
        "reference); on cuda, the Triton kernels against PyTorch, as a share of the GPU's copy "
        "bandwidth",
        {"cpu": "sseq.scan.bench_cpu:main", "cuda": "sseq.scan.bench_gpu:main"}),
    "memory": Benchmark(
        "chapter 1's two answers to the memory problem: time and bytes per token of a running "
        "state and of an attention cache, against the length of the history",
        {"cpu": "sseq.memory:bench_main"}),
    "attention": Benchmark(
        "chapter 6's cost of keeping everything: attention from its definition, PyTorch's fused "
        "kernel and the tiled online-softmax form (ms and peak MiB against the length), and the "
        "time per generated token with a KV cache",
        {"cpu": "sseq.attention.bench:main", "cuda": "sseq.attention.bench:main"}),
    "lm": Benchmark(
        "chapter 7's language models: training throughput (ms per step, characters per second, "
        "FLOPs per step) of the GPT, the LSTM and the Mamba LM at nanoGPT's CPU setting, and "
        "with --nanogpt PATH, the GPT beside nanoGPT's own model.py, taking turns",
        {"cpu": "sseq.lm.bench:main"}),
}


def _epilog() -> str:
    """The benchmarks, for ``--help``: name, devices, what it measures."""
    lines = ["benchmarks:"]
    for name, benchmark in BENCHMARKS.items():
        lines.append(f"  {name} (--device {', '.join(benchmark.targets)})")
        lines += textwrap.wrap(benchmark.description, 88, initial_indent=" " * 4,
                               subsequent_indent=" " * 4)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark that ``argv`` names; exits non-zero, saying why, where it cannot run
    (a device it has no version for, or CUDA asked for on a machine without a GPU)."""
    parser = argparse.ArgumentParser(prog="python -m sseq.bench",
                                     description="Run one of sseq's benchmarks; print a table.",
                                     epilog=_epilog(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", choices=list(BENCHMARKS), help="the benchmark (see below)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--quick", action="store_true", help="small shapes, few repeats")
    parser.add_argument("--nanogpt", metavar="PATH",
                        help="lm: also time nanoGPT's model.py, from a clone at PATH")
    args = parser.parse_args(argv)
    targets = BENCHMARKS[args.name].targets
    if args.device not in targets:
        parser.exit(2, f"python -m sseq.bench: benchmark {args.name!r} runs on "
                       f"{', '.join(targets)} only, not {args.device}\n")
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            parser.exit(1, f"python -m sseq.bench: {args.name} --device cuda: no CUDA device "
                           "here (Triton's CPU interpreter would time NumPy, not the kernel); "
                           "run it on a GPU\n")
    module, func = targets[args.device].split(":")
    getattr(importlib.import_module(module), func)(args)


if __name__ == "__main__":
    main()
