"""Timing and memory helpers measure what they claim (loose, order-of-magnitude checks)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from sseq import bench


def test_time_fn_measures_a_known_sleep():
    timing = bench.time_fn(lambda: time.sleep(0.01), repeat=3, warmup=0)
    assert 0.009 < timing.median < 0.2
    assert timing.q25 <= timing.median <= timing.q75
    assert len(timing.runs) == 3 and timing.ms == pytest.approx(1e3 * timing.median)


def test_time_fn_reports_time_per_call_not_per_round(monkeypatch):
    """Protects: with number > 1, each round's time is divided by the calls it made.

    A clock that advances 1 ms per call makes the answer exact: 1 ms per call whatever
    ``number`` is (a round of 5 calls is 5 ms; reporting it undivided gives 5 ms). The
    warm-up calls are not timed.
    """
    now = [0.0]

    def call():
        now[0] += 1e-3

    monkeypatch.setattr(bench.time, "perf_counter", lambda: now[0])
    for number in (1, 5):
        timing = bench.time_fn(call, repeat=3, warmup=2, number=number)
        assert timing.runs == pytest.approx((1e-3,) * 3, rel=1e-9)
        assert timing.median == pytest.approx(1e-3, rel=1e-9)
    assert now[0] == pytest.approx(1e-3 * (2 + 3 + 2 + 15))  # every call made, warm-ups too


def test_time_fn_rejects_bad_counts():
    with pytest.raises(ValueError, match="repeat=0"):
        bench.time_fn(lambda: None, repeat=0)


def test_peak_memory_sees_a_large_allocation():
    def allocate():
        a = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
        time.sleep(0.05)
        return a.sum()

    assert bench.peak_memory(allocate) > 32 * 2**20


def test_format_table_aligns_columns():
    table = bench.format_table([{"backend": "ref", "ms": 12.3456}, {"backend": "fast", "ms": 1.0}])
    lines = table.splitlines()
    assert lines[0] == "| backend | ms   |"
    assert lines[2] == "| ref     | 12.3 |"
    assert bench.format_table([]) == "(no rows)"


def test_cli_rejects_unknown_benchmarks(capsys):
    with pytest.raises(SystemExit):
        bench.main(["nonsense"])
    assert "invalid choice: 'nonsense'" in capsys.readouterr().err


def run_cli(*args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "sseq.bench", *args], capture_output=True,
                          text=True, timeout=300)


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the machine without a GPU")
def test_cli_gpu_benchmark_without_a_gpu_fails_clearly():
    """Issue 9: it printed a note and exited 0, so a script could not tell it ran nothing."""
    out = run_cli("scan", "--device", "cuda", "--quick")
    assert out.returncode != 0
    assert "no CUDA device" in out.stderr and "scan" in out.stderr


def test_cli_memory_benchmark_refuses_cuda():
    """Issue 9: --device cuda silently ran the CPU benchmark; it has no GPU version."""
    out = run_cli("memory", "--device", "cuda", "--quick")
    assert out.returncode != 0
    assert "benchmark 'memory' runs on cpu only, not cuda" in out.stderr
    assert "us/token" not in out.stdout


def test_cli_help_describes_each_benchmark(capsys):
    with pytest.raises(SystemExit) as info:
        bench.main(["--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for name, benchmark in bench.BENCHMARKS.items():
        assert f"{name} " in text and " ".join(benchmark.description.split()) in text
        assert f"{name} (--device {', '.join(benchmark.targets)})" in text
