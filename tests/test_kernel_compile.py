"""The Triton kernels compile for a real GPU (an H100, sm_90), on a machine without one.

The interpreter runs the kernels' Python, which accepts programs the GPU compiler rejects
(and the other way round); this compiles each kernel that inference and a training step
launch, exactly as Triton would at run time, down to the GPU's machine code.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

if importlib.util.find_spec("triton") is None:
    pytest.skip("triton is not installed", allow_module_level=True)

CODE = """
import json, torch
from sseq.scan.compile_report import compile_report
rows = compile_report(archs=(90,), cases=[(16, torch.float32)])
print(json.dumps(rows))
"""


def test_every_kernel_compiles_for_sm90():
    env = dict(os.environ, SSEQ_TRITON_COMPILE_ONLY="1", TRITON_INTERPRET="0")
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=env,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = json.loads(out.stdout.strip().splitlines()[-1])
    compiled = {(row["kernel"], row["call"]) for row in rows}
    assert compiled == {
        ("selective_scan_fwd", "inference"), ("selective_scan_fwd", "training"),
        ("selective_scan_bwd", "training"), ("v1 selective_scan_fwd_stepwise", "inference"),
        ("v1 selective_scan_fwd_stepwise", "training"), ("v1 selective_scan_bwd", "training"),
        ("linear_scan_fwd", "-"), ("linear_scan_bwd", "training")}
    assert all(row["registers"] > 0 and row["SASS instructions"] > 100 for row in rows)


def test_compile_report_refuses_an_interpreting_process():
    code = "from sseq.scan.compile_report import compile_report\ncompile_report()"
    for extra in ({}, {"SSEQ_TRITON_COMPILE_ONLY": "1"}):  # interpreting, with or without
        env = {k: v for k, v in os.environ.items() if k != "SSEQ_TRITON_COMPILE_ONLY"}
        env.update(TRITON_INTERPRET="1", **extra)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env)
        assert out.returncode != 0 and "SSEQ_TRITON_COMPILE_ONLY=1" in out.stderr


CODE_FLOAT64 = """
import json, re, torch
from sseq.scan import compile_report as kernel_compile
from sseq.scan import triton_kernel
rows = []
for label, kernel, args, kwargs in kernel_compile._record_launches(
        triton_kernel.GPU_CONFIG, 2, 256, 64, 16, torch.float64):
    ptx = kernel_compile.compile_launch(kernel, args, kwargs, 90).asm["ptx"]
    rows.append({"kernel": label, "f64": len(re.findall(r"[.]f64", ptx)),
                 "f32 exp2": len(re.findall(r"ex2[.]approx[.](ftz[.])?f32", ptx)),
                 "f32 log": len(re.findall(r"lg2[.]approx[.](ftz[.])?f32", ptx))})
print(json.dumps(rows))
"""


def test_float64_kernels_compile_for_sm90_and_compute_in_float64():
    """float64 inputs: every kernel compiles, and its exponentials and logarithms are the
    float64 ones (libdevice), not the fast float32 instructions."""
    env = dict(os.environ, SSEQ_TRITON_COMPILE_ONLY="1", TRITON_INTERPRET="0")
    out = subprocess.run([sys.executable, "-c", CODE_FLOAT64], capture_output=True, text=True,
                         env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = json.loads(out.stdout.strip().splitlines()[-1])
    assert {row["kernel"] for row in rows} == {"selective_scan_fwd", "selective_scan_bwd",
                                               "linear_scan_fwd", "linear_scan_bwd"}
    for row in rows:
        assert row["f64"] > 0 and row["f32 exp2"] == 0 and row["f32 log"] == 0, row
