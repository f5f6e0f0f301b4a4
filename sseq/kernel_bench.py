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
through Triton's CPU interpreter would be meaningless, so without CUDA this prints that and
exits. The rows ``triton-v1`` are the first kernels (:mod:`sseq.scan_triton_v1`), kept to
compare in one run.

Two more entry points: ``python -m sseq.kernel_bench --tune`` times candidate launch
parameters on a GPU, and ``python -m sseq.kernel_bench --compile [--arch 90 75]`` compiles
every kernel for a GPU that need not be there and reports what the compiler made of it:
registers per thread, bytes spilled to local memory, instructions.
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
        from sseq.scan_triton import selective_scan_triton

        return selective_scan_triton
    if backend == "triton-v1":  # the first kernels, to compare in the same run
        from sseq import scan_triton

        def first_version(*args, **kwargs):
            chosen, scan_triton.GPU_CONFIG = scan_triton.GPU_CONFIG, scan_triton.V1_CONFIG
            try:  # the backward pass keeps the configuration its forward pass used
                return scan_triton.selective_scan_triton(*args, **kwargs)
            finally:
                scan_triton.GPU_CONFIG = chosen

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
        print("No CUDA device: the Triton kernels would run in Triton's CPU interpreter, which "
              "executes them as NumPy code, one program at a time. Its timings say nothing "
              "about the kernel, so none are printed. Run this on a GPU.")
        return
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


# Launch parameters tried by ``python -m sseq.kernel_bench --tune``: channels per program,
# warps, forward chunk, backward chunk (= how often the forward saves a state), n unrolled
# in the backward up to.
CANDIDATES = [(32, 1, 16, 8, 1), (32, 1, 8, 8, 1), (32, 1, 32, 8, 1), (32, 1, 16, 16, 1),
              (32, 1, 16, 8, 16), (16, 1, 16, 8, 1), (64, 2, 16, 8, 1), (64, 1, 8, 8, 1),
              (128, 4, 16, 8, 1)]


def tune(batch=8, length=4096, d=1536, n=16) -> None:
    """Time each candidate configuration at one shape (fp32) and print the results."""
    import dataclasses

    from sseq import scan_triton

    base = scan_triton.GPU_CONFIG
    for block_d, warps, chunk_fwd, chunk, unroll_bwd in CANDIDATES:
        scan_triton.GPU_CONFIG = dataclasses.replace(
            base, block_d=block_d, warps=warps, chunk_fwd=chunk_fwd, chunk=chunk,
            unroll_n_bwd=unroll_bwd)
        label = (f"block_d={block_d} warps={warps} chunk_fwd={chunk_fwd} chunk={chunk} "
                 f"unroll_n_bwd={unroll_bwd}")
        try:
            fwd, both = time_scan("triton", batch, length, d, n, repeat=5)
            print(f"{label}: fwd {fwd:.3f} ms, fwd+bwd {both:.3f} ms", flush=True)
        except Exception as error:  # a configuration that does not compile or fit
            print(f"{label}: {type(error).__name__}: {str(error)[:200]}", flush=True)
    scan_triton.GPU_CONFIG = base


# --------------------------------------------------------------------------------------------
# What the compiler makes of the kernels, without a GPU: ``python -m sseq.kernel_bench --compile``
# --------------------------------------------------------------------------------------------

# (n, dtype) of the selective scans the report compiles, at the benchmark's b, l = 4096, d.
COMPILE_CASES = [(16, torch.float32), (16, torch.bfloat16), (256, torch.float32)]
_TRITON_TYPES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16",
                 torch.float64: "fp64"}


class _Recorder:
    """Stands in for a Triton kernel: ``kernel[grid](*args, **kwargs)`` records the call."""

    def __init__(self, kernel, calls, label):
        self.kernel, self.calls, self.label = kernel, calls, label

    def __getitem__(self, grid):
        return lambda *args, **kwargs: self.calls.append((self.label, self.kernel, args, kwargs))


def _record_launches(config, b, l, d, n, dtype):
    """The kernel launches of a selective scan (and a linear scan) on meta tensors."""
    from sseq import scan_triton, scan_triton_linear, scan_triton_v1

    calls = []
    modules = {scan_triton: ("_selective_scan_fwd_kernel", "_selective_scan_bwd_kernel"),
               scan_triton_v1: ("_selective_scan_fwd_stepwise_kernel",
                                "_selective_scan_bwd_kernel"),
               scan_triton_linear: ("_linear_scan_fwd_kernel", "_linear_scan_bwd_kernel")}
    saved = {(m, k): getattr(m, k) for m, names in modules.items() for k in names}
    saved_config = scan_triton.GPU_CONFIG
    try:
        for (module, name), kernel in saved.items():
            label = name.strip("_").replace("_kernel", "")
            if module is scan_triton_v1:
                label = "v1 " + label
            setattr(module, name, _Recorder(kernel, calls, label))
        scan_triton.GPU_CONFIG = config
        meta = dict(device="meta", dtype=dtype)
        x = dict(u=torch.empty(b, l, d, **meta), delta=torch.empty(b, l, d, **meta),
                 A=torch.empty(d, n, device="meta"), B=torch.empty(b, l, n, **meta),
                 C=torch.empty(b, l, n, **meta), D=torch.empty(d, device="meta"),
                 z=torch.empty(b, l, d, **meta), delta_bias=torch.empty(d, device="meta"))
        with torch.no_grad():
            scan_triton.selective_scan_triton(**x, delta_softplus=True)
        leaves = [v.requires_grad_() for v in x.values()]
        y = scan_triton.selective_scan_triton(**x, delta_softplus=True)
        torch.autograd.grad(y, leaves, torch.empty_like(y))
        a = torch.empty(b, l, d, **meta, requires_grad=True)
        h = scan_triton_linear.linear_scan_triton(a, a)
        torch.autograd.grad(h, a, torch.empty_like(h))
    finally:
        for (module, name), kernel in saved.items():
            setattr(module, name, kernel)
        scan_triton.GPU_CONFIG = saved_config
    return calls


def compile_launch(kernel, args, kwargs, arch):
    """Compile one recorded launch for the CUDA architecture ``arch`` (90 = H100) as Triton
    would at run time: integers divisible by 16 and pointers are marked so, 1 is a constant."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    kwargs = dict(kwargs)
    options = {k: kwargs.pop(k) for k in ("num_warps", "num_stages") if k in kwargs}
    values = dict(zip(kernel.arg_names, args, strict=False)) | kwargs
    signature, constants, attrs = {}, {}, {}
    for i, (name, param) in enumerate(zip(kernel.arg_names, kernel.params, strict=True)):
        value = values[name]
        if param.is_constexpr or (isinstance(value, int) and value == 1):
            signature[name], constants[(i,)] = "constexpr", value
        elif isinstance(value, torch.Tensor):
            signature[name] = "*" + _TRITON_TYPES[value.dtype]
            attrs[(i,)] = [["tt.divisibility", 16]]
        else:
            signature[name] = "i32" if abs(value) < 2**31 else "i64"
            if value % 16 == 0:
                attrs[(i,)] = [["tt.divisibility", 16]]
    source = ASTSource(fn=kernel, signature=signature, constexprs=constants, attrs=attrs)
    return triton.compile(source, target=GPUTarget("cuda", arch, 32), options=options)


def _resources(cubin: bytes) -> dict:
    """Registers per thread, stack bytes (where registers spill to), shared memory, and the
    SASS instructions, block-wide barriers and warp shuffles in the code of a cubin (read with
    the cuobjdump that ships with Triton): barriers and shuffles are where threads wait for
    each other."""
    import pathlib
    import re
    import subprocess
    import tempfile

    import triton.backends.nvidia as nvidia

    tool = pathlib.Path(nvidia.__file__).parent / "bin" / "cuobjdump"
    if not tool.exists():
        raise FileNotFoundError(f"cuobjdump, which Triton's CUDA backend ships, is not at {tool}")
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        usage = subprocess.run([tool, "--dump-resource-usage", f.name], capture_output=True,
                               text=True, check=True).stdout
        sass = subprocess.run([tool, "-sass", f.name], capture_output=True, text=True,
                              check=True).stdout
    found = re.search(r"REG:(\d+) STACK:(\d+) SHARED:(\d+)", usage)
    return {"registers": int(found[1]), "stack bytes": int(found[2]),
            "shared B": int(found[3]),
            "SASS instructions": len(re.findall(r"^\s+/\*[0-9a-f]{4,}\*/", sass, re.M)),
            "barriers": sass.count("BAR.SYNC"), "shuffles": sass.count("SHFL.")}


def compile_report(archs=(90,), cases=None, kernels=None) -> list[dict]:
    """Compile every kernel that inference and a training step launch; one row each.

    ``cases``: (n, dtype) pairs (default :data:`COMPILE_CASES`); ``kernels``: keep only these
    kernel names. Needs ``SSEQ_TRITON_COMPILE_ONLY=1`` set before sseq imports Triton.
    """
    from sseq import scan_triton

    if not scan_triton.COMPILE_ONLY or scan_triton.INTERPRETED:
        raise RuntimeError("compile_report needs SSEQ_TRITON_COMPILE_ONLY=1 and TRITON_INTERPRET "
                           "unset (or 0) before sseq.scan_triton is imported; "
                           "python -m sseq.kernel_bench --compile arranges both")
    b, l, d = SHAPES["batch"], 4096, SHAPES["d"]
    rows, seen = [], set()
    for n, dtype in cases or COMPILE_CASES:
        for config in (scan_triton.GPU_CONFIG, scan_triton.V1_CONFIG):
            for label, kernel, args, kwargs in _record_launches(config, b, l, d, n, dtype):
                selective = "selective" in label
                key = (label, n if selective else None, dtype, kwargs.get("SAVE_STATES"))
                if (kernels and label not in kernels) or key in seen:
                    continue
                seen.add(key)
                call = {True: "training", False: "inference"}.get(kwargs.get("SAVE_STATES"), "-")
                if "bwd" in label:
                    call = "training"
                for arch in archs:
                    compiled = compile_launch(kernel, args, kwargs, arch)
                    rows.append({"kernel": label, "call": call, "n": n if selective else "-",
                                 "dtype": str(dtype)[6:], "sm": arch,
                                 "warps": kwargs.get("num_warps", 4),
                                 **_resources(compiled.asm["cubin"])})
    return rows


def _compile_main(archs) -> None:
    """Print the compile report, re-running in a process where Triton compiles for a GPU."""
    import os
    import subprocess
    import sys

    if os.environ.get("SSEQ_TRITON_COMPILE_ONLY") != "1":
        env = dict(os.environ, SSEQ_TRITON_COMPILE_ONLY="1", TRITON_INTERPRET="0")
        command = [sys.executable, "-m", "sseq.kernel_bench", "--compile",
                   "--arch", *map(str, archs)]
        raise SystemExit(subprocess.run(command, env=env).returncode)
    import triton

    print(f"Triton {triton.__version__}, compiled for sm_{', sm_'.join(map(str, archs))} "
          f"(no GPU needed); b={SHAPES['batch']}, l=4096, d={SHAPES['d']}\n", flush=True)
    print(format_table(compile_report(archs)))


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m sseq.kernel_bench")
    parser.add_argument("--tune", action="store_true", help="time candidate block sizes")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--compile", action="store_true",
                        help="compile for a GPU (none needed) and report registers, spills")
    parser.add_argument("--arch", type=int, nargs="+", default=[90],
                        help="CUDA compute capabilities for --compile (90: H100, 75: T4)")
    cli = parser.parse_args()
    if cli.compile:
        _compile_main(cli.arch)
    elif cli.tune and torch.cuda.is_available():
        tune()
    else:
        main(cli)
