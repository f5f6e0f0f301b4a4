"""The GPU benchmark of the selective scan: ``python -m sseq.bench scan --device cuda``.

For Mamba's shape (batch 8, D = 1536 channels, N = 16 states, L = 1024 … 16384) it times
the Triton kernel against the PyTorch backends of :mod:`sseq.scan`, forward and
forward+backward, and turns each time into an *effective bandwidth*: the bytes the operation
must move at the least (each input read once, each output written once) over the time. Its
ceiling is the GPU's own device-to-device copy bandwidth, measured here with a large copy;
the ratio says how close a kernel comes to the cost of just reading its inputs.

* forward bytes: u, Δ, z read and y written, ``4·b·l·d`` numbers, plus B, C, ``2·b·l·n``;
* forward+backward adds the output gradient read and ∂u, ∂Δ, ∂z, ∂B, ∂C written: in all
  ``8·b·l·d + 4·b·l·n`` numbers (A, D and the bias are too small to count).

The forward is timed under ``torch.no_grad()`` (inference: the kernel then skips saving
chunk-boundary states); forward+backward with every input requiring a gradient. Timings
through Triton's CPU interpreter would be meaningless, so without CUDA this says so and exits
with an error. The rows ``triton-v1`` are the first kernels (:mod:`sseq.scan.triton_kernel_v1`),
kept to compare in one run.

``python -m sseq.scan.bench_gpu --tune`` times candidate launch parameters on a GPU; what the
compiler makes of the kernels, without a GPU, is :mod:`sseq.scan.compile_report`.
"""

from __future__ import annotations

import datetime
import math

import torch

from sseq.bench import format_table, time_fn

__all__ = ["copy_bandwidth", "main", "mamba_inputs", "time_scan"]

SHAPES = dict(batch=8, lengths=(1024, 4096, 16384), d=1536, n=16)
QUICK_SHAPES = dict(batch=2, lengths=(256, 1024), d=256, n=16)
# The PyTorch loop is too slow (and its autograd graph too large) past this length.
REFERENCE_MAX_L = 4096


def copy_bandwidth(nbytes: int = 2**30) -> float:
    """Device-to-device copy bandwidth in bytes/s, counting bytes read plus bytes written."""
    x = torch.randn(nbytes // 4, device="cuda")
    y = torch.empty_like(x)
    timing = time_fn(lambda: y.copy_(x), repeat=20, warmup=3, device="cuda")
    return 2 * nbytes / timing.median


def mamba_inputs(batch, length, d, n, dtype=torch.float32, requires_grad=False, seed=0):
    """Inputs of one Mamba layer's scan: S4D-real A, softplus Δ with a bias, D and the gate z."""
    g = torch.Generator(device="cuda").manual_seed(seed)

    def rand(*shape, scale=1.0, offset=0.0):
        x = offset + scale * torch.randn(*shape, device="cuda", generator=g)
        return x.to(dtype).requires_grad_(requires_grad)

    A = -torch.arange(1, n + 1, device="cuda", dtype=torch.float32).repeat(d, 1)  # (d, n)
    return dict(
        u=rand(batch, length, d), delta=rand(batch, length, d, scale=0.5, offset=-1.0),
        A=A.requires_grad_(requires_grad), B=rand(batch, length, n), C=rand(batch, length, n),
        D=torch.ones(d, device="cuda").requires_grad_(requires_grad), z=rand(batch, length, d),
        delta_bias=(0.1 * torch.rand(d, device="cuda", generator=g)).requires_grad_(
            requires_grad),
    )


def _scan_fn(backend):
    if backend == "triton":
        from sseq.scan.triton_kernel import selective_scan_triton

        return selective_scan_triton
    if backend == "triton-v1":  # the first kernels, to compare in the same run
        from sseq.scan import triton_kernel

        def first_version(*args, **kwargs):
            with triton_kernel.use_config(triton_kernel.V1_CONFIG):
                return triton_kernel.selective_scan_triton(*args, **kwargs)

        return first_version
    from sseq.scan import selective_scan

    return lambda *args, **kw: selective_scan(*args, **kw, backend=backend)


def time_scan(backend, batch, length, d, n, dtype=torch.float32, repeat=10):
    """Milliseconds of the forward and of forward+backward (None where out of memory)."""
    scan = _scan_fn(backend)
    x = mamba_inputs(batch, length, d, n, dtype)
    with torch.no_grad():
        fwd = _time_or_oom(lambda: scan(**x, delta_softplus=True), repeat)
    del x
    x = mamba_inputs(batch, length, d, n, dtype, requires_grad=True)
    leaves = list(x.values())
    gy = torch.randn(batch, length, d, device="cuda", dtype=dtype)

    def forward_backward():
        y = scan(**x, delta_softplus=True)
        return torch.autograd.grad(y, leaves, gy)

    both = _time_or_oom(forward_backward, max(3, repeat // 2))
    return fwd, both


def _time_or_oom(fn, repeat):
    try:
        return time_fn(fn, repeat=repeat, warmup=2, device="cuda").ms
    except torch.cuda.OutOfMemoryError:
        return None
    finally:
        torch.cuda.empty_cache()


def _row(backend, length, fwd, both, nbytes, copy_bw, itemsize):
    b, l, d, n = nbytes
    fwd_bytes = itemsize * (4 * b * l * d + 2 * b * l * n)
    both_bytes = itemsize * (8 * b * l * d + 4 * b * l * n)

    def share(ms, nb):
        return "OOM" if ms is None else f"{100 * nb / (ms * 1e-3) / copy_bw:.0f}%"

    return {"L": length, "backend": backend, "fwd ms": "OOM" if fwd is None else fwd,
            "fwd % copy": share(fwd, fwd_bytes), "fwd+bwd ms": "OOM" if both is None else both,
            "fwd+bwd % copy": share(both, both_bytes)}


def main(args) -> None:
    """Print the benchmark table (``args.quick``: small shapes, few repeats)."""
    if not torch.cuda.is_available():
        raise SystemExit("No CUDA device: the Triton kernels would run in Triton's CPU "
                         "interpreter, which executes them as NumPy code, one program at a "
                         "time. Its timings say nothing about the kernel, so none are taken. "
                         "Run this on a GPU.")
    import triton

    shapes = QUICK_SHAPES if getattr(args, "quick", False) else SHAPES
    batch, d, n = shapes["batch"], shapes["d"], shapes["n"]
    repeat = 3 if getattr(args, "quick", False) else 10
    copy_bw = copy_bandwidth()
    print(f"{torch.cuda.get_device_name()} | {datetime.date.today()} | torch {torch.__version__}"
          f" | triton {triton.__version__} | copy bandwidth {copy_bw / 1e9:.0f} GB/s")
    print(f"batch={batch}, d={d}, n={n}; z, D, delta_bias and softplus on; median of "
          f"{repeat} runs\n")
    rows, speedups = [], []
    for length in shapes["lengths"]:
        times = {}
        runs = [("triton", torch.float32), ("triton", torch.bfloat16),
                ("triton-v1", torch.float32), ("parallel", torch.float32)]
        if length <= REFERENCE_MAX_L:
            runs.append(("reference", torch.float32))
        for backend, dtype in runs:
            fwd, both = time_scan(backend, batch, length, d, n, dtype, repeat)
            name = backend if dtype == torch.float32 else f"{backend} ({str(dtype)[6:]})"
            times[name] = (fwd, both)
            itemsize = torch.finfo(dtype).bits // 8
            rows.append(_row(name, length, fwd, both, (batch, length, d, n), copy_bw, itemsize))
        speedups.append(_speedups(length, times))
    print(format_table(rows))
    print(f"\n(reference: skipped for L > {REFERENCE_MAX_L}; OOM: out of GPU memory)\n")
    print(format_table(speedups))


def _speedups(length, times):
    """Triton fp32 against the fastest PyTorch forward, the parallel forward+backward and the
    first kernels."""
    tri_fwd, tri_both = times["triton"]
    torch_fwd = [t[0] for k, t in times.items() if not k.startswith("triton") and t[0]]
    par_both = times["parallel"][1]
    return {"L": length,
            "fwd: fastest PyTorch / triton": min(torch_fwd) / tri_fwd if torch_fwd else math.nan,
            "fwd+bwd: parallel / triton": par_both / tri_both if par_both else math.nan,
            "fwd: v1 / triton": times["triton-v1"][0] / tri_fwd,
            "fwd+bwd: v1 / triton": times["triton-v1"][1] / tri_both}


# Launch parameters tried by ``python -m sseq.scan.bench_gpu --tune``: channels per program,
# warps, forward chunk, backward chunk (= how often the forward saves a state), n unrolled
# in the backward up to.
CANDIDATES = [(32, 1, 16, 8, 1), (32, 1, 8, 8, 1), (32, 1, 32, 8, 1), (32, 1, 16, 16, 1),
              (32, 1, 16, 8, 16), (16, 1, 16, 8, 1), (64, 2, 16, 8, 1), (64, 1, 8, 8, 1),
              (128, 4, 16, 8, 1)]


def tune(batch=8, length=4096, d=1536, n=16) -> None:
    """Time each candidate configuration at one shape (fp32) and print the results."""
    import dataclasses

    from sseq.scan import triton_kernel

    for block_d, warps, chunk_fwd, chunk, unroll_bwd in CANDIDATES:
        config = dataclasses.replace(triton_kernel.GPU_CONFIG, block_d=block_d, warps=warps,
                                     chunk_fwd=chunk_fwd, chunk=chunk, unroll_n_bwd=unroll_bwd)
        label = (f"block_d={block_d} warps={warps} chunk_fwd={chunk_fwd} chunk={chunk} "
                 f"unroll_n_bwd={unroll_bwd}")
        try:
            with triton_kernel.use_config(config):
                fwd, both = time_scan("triton", batch, length, d, n, repeat=5)
            print(f"{label}: fwd {fwd:.3f} ms, fwd+bwd {both:.3f} ms", flush=True)
        except Exception as error:  # a configuration that does not compile or fit
            print(f"{label}: {type(error).__name__}: {str(error)[:200]}", flush=True)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m sseq.scan.bench_gpu")
    parser.add_argument("--tune", action="store_true", help="time candidate block sizes")
    parser.add_argument("--quick", action="store_true")
    cli = parser.parse_args()
    if cli.tune and torch.cuda.is_available():
        tune()
    else:
        main(cli)
