"""``python -m sseq.bench scan``: the CPU backends of :mod:`sseq.scan`, side by side.

For each backend but Triton (``python -m sseq.bench scan --device cuda`` measures that one),
at Mamba-sized shapes in float32, the table gives the median milliseconds of a forward pass
and of forward + backward, the speed-up over ``"reference"``, the peak extra memory, and the
largest absolute difference from ``"reference"`` in the output and in the gradients.
"""

from __future__ import annotations

import ctypes
import math
import os
import statistics

import torch

from sseq import scan
from sseq.bench import format_table, peak_memory, time_fn

__all__ = ["SHAPES", "main", "make_inputs", "measure", "measure_memory"]

SHAPES = ((2, 1024, 256, 16), (2, 4096, 128, 16))  # (b, l, d, n)
QUICK_SHAPES = ((2, 256, 64, 16), (2, 512, 32, 16))
_MIB = 2.0**20


def make_inputs(b: int, l: int, d: int, n: int, seed: int = 0) -> dict:
    """Inputs as a freshly initialized Mamba layer sees them, every option switched on.

    A = −(1, …, n) per channel (S4D-Real); delta_bias is softplus⁻¹ of Δ drawn log-uniformly
    in [0.001, 0.1] (Mamba's dt init); u, B, C, z standard normal; D = 1.
    """
    g = torch.Generator().manual_seed(seed)
    log_dt = torch.rand(d, generator=g) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3)
    dt = torch.exp(log_dt)
    return {
        "u": torch.randn(b, l, d, generator=g),
        "delta": 0.1 * torch.randn(b, l, d, generator=g),
        "A": -torch.arange(1, n + 1, dtype=torch.float32).repeat(d, 1),  # (d, n)
        "B": torch.randn(b, l, n, generator=g),
        "C": torch.randn(b, l, n, generator=g),
        "D": torch.ones(d),
        "z": torch.randn(b, l, d, generator=g),
        "delta_bias": dt + torch.log(-torch.expm1(-dt)),  # softplus(delta_bias) = dt
    }


def _forward_backward(backend: str, inputs: dict, g: torch.Tensor):
    """Forward + backward of ⟨y, g⟩; returns y and the gradients (u, delta, A, ...)."""
    leaves = {k: v.detach().requires_grad_() for k, v in inputs.items()}
    y = scan.selective_scan(**leaves, delta_softplus=True, backend=backend)
    y.backward(g)
    return y.detach(), [v.grad for v in leaves.values()]


def _workloads(backend: str, inputs: dict):
    """The two things timed: a forward pass, and forward + backward of ⟨y, 1⟩."""

    def forward():
        with torch.no_grad():
            return scan.selective_scan(**inputs, delta_softplus=True, backend=backend)

    g = torch.ones_like(inputs["u"])
    return forward, lambda: _forward_backward(backend, inputs, g)


def measure(backends, inputs: dict, repeat: int = 5) -> dict:
    """Median ms of forward and of forward + backward for each backend; the results to compare.

    The backends are timed in turns (a, b, c, a, b, c, ...): on a shared machine a burst of
    load from another process then slows all of them, not one, and the ratios hold.
    """
    work = {name: _workloads(name, inputs) for name in backends}
    results = {name: {"result": forward_backward(), "fwd": [], "fwd+bwd": []}
               for name, (_, forward_backward) in work.items()}  # also the warm-up
    for _ in range(repeat):
        for name, (forward, forward_backward) in work.items():
            results[name]["fwd"].append(time_fn(forward, repeat=1, warmup=0).median)
            results[name]["fwd+bwd"].append(time_fn(forward_backward, repeat=1, warmup=0).median)
    for r in results.values():
        r["fwd ms"], r["fwd+bwd ms"] = (1e3 * statistics.median(r.pop(k)) for k in ("fwd",
                                                                                   "fwd+bwd"))
    return results


def measure_memory(backend: str, inputs: dict) -> dict:
    """Peak extra MiB (resident set) of forward and of forward + backward."""
    peaks = {}
    for name, fn in zip(("fwd", "fwd+bwd"), _workloads(backend, inputs), strict=True):
        _release_freed_memory()
        peaks[f"peak MiB {name}"] = peak_memory(fn) / _MIB
    return peaks


def _release_freed_memory() -> None:
    """Make freed memory leave the resident set, which :func:`~sseq.bench.peak_memory` reads.

    glibc keeps freed blocks on its heap, and after the first large free it serves large
    tensors from there too: every peak after the first would read about 0. So pin its mmap
    threshold at 128 KiB and return the free heap to the system. Slows allocation (page
    faults): call it after the timings. Affects this benchmark process only.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 128 * 1024)  # -3: M_MMAP_THRESHOLD
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: peaks may read low
        pass


def _environment() -> str:
    numba = "numba absent"
    if scan.cpu is not None:
        import numba as nb

        numba = f"numba {nb.__version__}"
    return (f"torch {torch.__version__}, {numba}, {torch.get_num_threads()} threads "
            f"(PyTorch's, and the cpu backend's pool), {os.cpu_count()} CPUs, load average "
            f"{os.getloadavg()[0]:.1f} at the end; backends {scan.BACKENDS}")


def _row(name, shape, r, ref) -> dict:
    (y, grads), (y_ref, grads_ref) = r["result"], ref["result"]
    return {"backend": name, "(b, l, d, n)": str(shape),
            "fwd ms": r["fwd ms"], "fwd ×ref": ref["fwd ms"] / r["fwd ms"],
            "fwd+bwd ms": r["fwd+bwd ms"], "fwd+bwd ×ref": ref["fwd+bwd ms"] / r["fwd+bwd ms"],
            "peak MiB fwd": r["peak MiB fwd"], "peak MiB fwd+bwd": r["peak MiB fwd+bwd"],
            "max|y−ref|": (y - y_ref).abs().max().item(),
            "max|∇−ref|": max((a - b).abs().max().item()
                              for a, b in zip(grads, grads_ref, strict=True))}


def main(args=None) -> None:
    """Print the table (``args.quick``: small shapes)."""
    quick = bool(getattr(args, "quick", False))
    shapes, repeat = (QUICK_SHAPES, 3) if quick else (SHAPES, 5)
    backends = [name for name in scan.BACKENDS if name != "triton"]
    inputs = {shape: make_inputs(*shape) for shape in shapes}
    results = {(shape, name): r for shape in shapes
               for name, r in measure(backends, inputs[shape], repeat).items()}
    # Memory after all timings: measuring it slows later allocations (see above).
    for (shape, name), r in results.items():
        r.update(measure_memory(name, inputs[shape]))
    rows = [_row(name, shape, r, results[shape, "reference"])
            for (shape, name), r in results.items()]
    print(format_table(rows))
    print(f"\nfloat32, CPU; medians of {repeat} runs taken in turns, after a warm-up; "
          f"{_environment()}")
