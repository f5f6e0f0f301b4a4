"""What the compiler makes of the GPU kernels, on a machine without a GPU.

``python -m sseq.scan.compile_report [--arch 90 75] [--quick]`` compiles every Triton kernel that a
selective scan launches — inference and a training step, both kernel versions, and the
linear scan — for the given CUDA architectures (90: H100, 80: A100, 75: T4), exactly as
Triton would at run time for the benchmark's shape, and reads the machine code (SASS) with
the ``cuobjdump`` that ships with Triton. One row per kernel: registers per thread, stack
bytes (where registers that do not fit spill to), shared memory, instructions in the code,
and the block-wide barriers and warp shuffles among them, where threads wait for each other.

None of this is a timing; it says whether a kernel compiles for a GPU, and how its threads
use registers and talk to each other. The launches are recorded on ``meta`` tensors (no
memory, no device), by standing in for each kernel while the real launch code runs.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import tempfile

import torch

from sseq.bench import format_table
from sseq.scan.bench_gpu import SHAPES

__all__ = ["COMPILE_CASES", "compile_launch", "compile_report", "main"]


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
    from sseq.scan import triton_kernel, triton_kernel_v1, triton_linear

    calls = []
    modules = {triton_kernel: ("_selective_scan_fwd_kernel", "_selective_scan_bwd_kernel"),
               triton_kernel_v1: ("_selective_scan_fwd_stepwise_kernel",
                                "_selective_scan_bwd_kernel"),
               triton_linear: ("_linear_scan_fwd_kernel", "_linear_scan_bwd_kernel")}
    saved = {(m, k): getattr(m, k) for m, names in modules.items() for k in names}
    try:
        for (module, name), kernel in saved.items():
            label = name.strip("_").replace("_kernel", "")
            if module is triton_kernel_v1:
                label = "v1 " + label
            setattr(module, name, _Recorder(kernel, calls, label))
        meta = dict(device="meta", dtype=dtype)
        x = dict(u=torch.empty(b, l, d, **meta), delta=torch.empty(b, l, d, **meta),
                 A=torch.empty(d, n, device="meta"), B=torch.empty(b, l, n, **meta),
                 C=torch.empty(b, l, n, **meta), D=torch.empty(d, device="meta"),
                 z=torch.empty(b, l, d, **meta), delta_bias=torch.empty(d, device="meta"))
        with triton_kernel.use_config(config):
            with torch.no_grad():
                triton_kernel.selective_scan_triton(**x, delta_softplus=True)
            leaves = [v.requires_grad_() for v in x.values()]
            y = triton_kernel.selective_scan_triton(**x, delta_softplus=True)
            torch.autograd.grad(y, leaves, torch.empty_like(y))
        a = torch.empty(b, l, d, **meta, requires_grad=True)
        h = triton_linear.linear_scan_triton(a, a)
        torch.autograd.grad(h, a, torch.empty_like(h))
    finally:
        for (module, name), kernel in saved.items():
            setattr(module, name, kernel)
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


def compile_report(archs=(90,), cases=None, kernels=None, progress=False) -> list[dict]:
    """Compile every kernel that inference and a training step launch; one row each.

    ``progress``: name each kernel on stderr as it compiles (a few seconds each).
    ``cases``: (n, dtype) pairs (default :data:`COMPILE_CASES`); ``kernels``: keep only these
    kernel names. Needs ``SSEQ_TRITON_COMPILE_ONLY=1`` set before sseq imports Triton.
    """
    from sseq.scan import triton_common, triton_kernel

    if not triton_common.COMPILE_ONLY or triton_common.INTERPRETED:
        raise RuntimeError("compile_report needs SSEQ_TRITON_COMPILE_ONLY=1 and TRITON_INTERPRET "
                           "unset (or 0) before sseq.scan.triton_common is imported; "
                           "python -m sseq.scan.compile_report arranges both")
    b, l, d = SHAPES["batch"], 4096, SHAPES["d"]
    rows, seen = [], set()
    for n, dtype in cases or COMPILE_CASES:
        for config in (triton_kernel.GPU_CONFIG, triton_kernel.V1_CONFIG):
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
                    if progress:
                        what = f"{call}, n={n}" if selective else call
                        print(f"compiling {label} ({what}, {str(dtype)[6:]}) for sm_{arch}",
                              file=sys.stderr, flush=True)
                    compiled = compile_launch(kernel, args, kwargs, arch)
                    rows.append({"kernel": label, "call": call, "n": n if selective else "-",
                                 "dtype": str(dtype)[6:], "sm": arch,
                                 "warps": kwargs.get("num_warps", 4),
                                 **_resources(compiled.asm["cubin"])})
    return rows


def main(archs=(90,), quick=False) -> None:
    """Print the compile report (``quick``: n = 16 in fp32 only), re-running in a process
    where Triton compiles for a GPU."""
    if os.environ.get("SSEQ_TRITON_COMPILE_ONLY") != "1":
        env = dict(os.environ, SSEQ_TRITON_COMPILE_ONLY="1", TRITON_INTERPRET="0")
        command = [sys.executable, "-m", "sseq.scan.compile_report", "--arch", *map(str, archs)]
        raise SystemExit(subprocess.run(command + ["--quick"] * quick, env=env).returncode)
    import triton

    print(f"Triton {triton.__version__}, compiled for sm_{', sm_'.join(map(str, archs))} "
          f"(no GPU needed); b={SHAPES['batch']}, l=4096, d={SHAPES['d']}\n", flush=True)
    cases = [(16, torch.float32)] if quick else None
    print(format_table(compile_report(archs, cases, progress=True)))


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m sseq.scan.compile_report",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--arch", type=int, nargs="+", default=[90],
                        help="CUDA compute capabilities (90: H100, 80: A100, 75: T4)")
    parser.add_argument("--quick", action="store_true", help="n = 16 in fp32 only")
    cli = parser.parse_args()
    main(cli.arch, cli.quick)
