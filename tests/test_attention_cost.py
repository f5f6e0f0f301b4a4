"""The memory meter, the cost helpers, published model shapes and the benchmark command."""

from __future__ import annotations

import pytest
import torch

from sseq import attention as A
from sseq import bench
from sseq.attention import bench as attention_bench


def test_meter_counts_a_known_allocation_once_and_releases_it():
    def work():
        a = torch.ones(1000)        # 4,000 bytes
        view = a[10:20]             # a view: no new memory
        b = a * 2                   # another 4,000
        del a, b                    # the view keeps a's storage alive
        c = torch.zeros(250)        # 1,000 more
        return view, c

    with A.TensorMemoryMeter() as meter:
        kept = work()
    assert meter.peak == 8000
    assert meter.current == 5000    # a's storage (held by the view) and c
    del kept
    assert meter.current == 0
    assert A.peak_tensor_memory(lambda: torch.empty(3, 5, dtype=torch.float64)) == 120


def test_meter_counts_each_new_output_and_every_tensor_sharing_it():
    """Protects the meter's rule, one operator at a time: outputs are found inside nested
    tuples, lists and dicts; an output on a storage that existed before is skipped and the
    next outputs still counted; a storage is released when the last tensor on it is freed."""
    import gc

    from sseq.attention import cost

    old, mine = torch.ones(10), torch.ones(1000)
    assert [id(t) for t in cost._tensors(([old, (mine,)], {"a": old}, 3))] == [
        id(old), id(mine), id(old)]
    meter = cost.TensorMemoryMeter()
    new = torch.ones(1000)                               # 4,000 bytes
    views = (new[:500], new[500:])
    out = meter.__torch_dispatch__(lambda *a, _v=views, **k: [old, {"v": _v}], (), (old,))
    assert meter.current == meter.peak == 4000 and out[1]["v"] is views
    del new, out
    v0, v1 = views
    del views
    del v0
    gc.collect()
    assert meter.current == 4000                         # v1 still holds the storage
    del v1
    gc.collect()
    assert meter.current == 0 and meter.peak == 4000


def test_the_fused_method_is_causal_when_asked():
    """Protects the benchmark's torch method: causal=True is passed on."""
    from sseq.attention import cost

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, 6, 4, generator=g, dtype=torch.float64) for _ in range(3))
    for causal in (False, True):
        torch.testing.assert_close(cost.METHODS["torch (fused)"](q, k, v, causal, 4),
                                   A.scaled_dot_product_attention(q, k, v, causal=causal))


def test_meter_ignores_memory_that_existed_before():
    x = torch.ones(10_000)
    assert A.peak_tensor_memory(lambda: x[::2].sum()) == 4  # only the 0-d result


def test_direct_attention_memory_is_quadratic_and_the_fused_kernel_is_not():
    rows = A.attention_cost([256, 512], repeat=1, d=16)
    peak = {(r["method"], r["n"]): r["peak_bytes"] for r in rows}
    assert peak["sseq (direct)", 512] / peak["sseq (direct)", 256] > 3.5
    for method in ("torch (fused)", "flash (sseq, tiled)"):
        assert peak[method, 512] / peak[method, 256] < 2.5
    assert peak["torch (fused)", 512] >= 512 * 16 * 4  # at least the output
    assert {r["method"] for r in rows} == set(A.cost.METHODS)
    assert all(r["ms"] > 0 for r in rows)


def test_decode_cost_reports_the_cache_it_reads():
    cost = A.decode_cost([16, 64], d_model=32, n_heads=4, n_kv_heads=2, repeat=1, number=1)
    assert cost["context"] == [16, 64]
    assert cost["cache_bytes"] == [2 * n * 2 * 8 * 4 for n in (16, 64)]  # K and V, 2 heads of 8
    assert len(cost["seconds"]) == 2


def test_kv_bytes_of_published_models():
    shapes = {m.name: m for m in A.MODEL_SHAPES}
    assert shapes["Llama 2 7B"].kv_bytes_per_token() == 2 * 32 * 32 * 128 * 2 == 512 * 2**10
    assert shapes["Llama 2 70B"].kv_bytes_per_token() == 320 * 2**10   # GQA: 8 KV heads of 64
    assert shapes["Llama 3 8B"].kv_bytes_per_token() == 128 * 2**10
    assert shapes["GPT-2 (124M)"].kv_bytes_per_token(4) == 2 * 12 * 768 * 4
    mistral = shapes["Mistral 7B"]
    assert mistral.kv_cache_bytes(32768) == mistral.kv_cache_bytes(4096)  # the window caps it
    assert shapes["Llama 3 8B"].kv_cache_bytes(32768) == 4 * 2**30
    assert A.MAMBA_2_8B.state_bytes() == 64 * 5120 * (16 + 3) * 2


@pytest.mark.slow
def test_benchmark_prints_its_tables(capsys, monkeypatch):
    def few_lengths(lengths, *, methods, **kw):
        return A.attention_cost(lengths[:2], methods=methods, repeat=1)

    monkeypatch.setattr(attention_bench, "attention_cost", few_lengths)
    monkeypatch.setattr(attention_bench, "decode_cost",
                        lambda contexts: A.decode_cost(contexts[:2], repeat=1, number=1))
    bench.main(["attention", "--quick"])
    out = capsys.readouterr().out
    assert "| method" in out and "torch (fused)" in out and "flash (sseq, tiled)" in out
    assert "| context | us/token | cache KiB |" in out
    assert "Llama 3 8B" in out and "Mamba 2.8B (state)" in out


@pytest.mark.parametrize(("device", "quick", "tops", "repeat", "contexts"), [
    ("cpu", True, (12, 12), 3, [256, 1024, 4096]),
    ("cpu", False, (13, 15), 5, [256, 1024, 4096, 16384, 65536]),
    ("mps", False, (15, 15), 5, [256, 1024, 4096, 16384, 65536]),
])
def test_benchmark_asks_for_its_documented_sizes(monkeypatch, device, quick, tops, repeat,
                                                 contexts):
    """Protects what the attention benchmark measures and prints: lengths 2^8 … 2^15 (2^13 for
    the direct form on the CPU, whose n² matrices would not fit; 2^12 with --quick), its
    repeats, the decode contexts, and every table's rows and units."""
    from types import SimpleNamespace

    from sseq import bench as sseq_bench

    asked, tables = [], []

    def fake_cost(lengths, *, methods, device, repeat):
        asked.append((methods, list(lengths), device, repeat))
        return [{"method": methods[0], "n": n, "ms": n / 100, "peak_bytes": n * 2**20}
                for n in lengths]

    def fake_decode(ctx):
        asked.append(("decode", list(ctx)))
        return {"context": list(ctx), "seconds": [1e-6 * c for c in ctx],
                "cache_bytes": [2048 * c for c in ctx]}

    monkeypatch.setattr(attention_bench, "attention_cost", fake_cost)
    monkeypatch.setattr(attention_bench, "decode_cost", fake_decode)
    monkeypatch.setattr(sseq_bench, "format_table", lambda rows: tables.append(rows) or "")
    attention_bench.main(SimpleNamespace(device=device, quick=quick))
    direct, top = tops
    assert asked[:3] == [((m,), [2**p for p in range(8, (direct if m == "sseq (direct)" else top)
                                                      + 1)], device, repeat)
                         for m in attention_bench.METHODS]
    assert asked[3] == ("decode", contexts)
    first = tables[0]
    assert [(r["n"], r["method"]) for r in first] == sorted(
        ((r["n"], r["method"]) for r in first),
        key=lambda t: (t[0], list(attention_bench.METHODS).index(t[1])))
    assert first[0] == {"method": "sseq (direct)", "n": 256, "ms": 2.56, "peak MiB": 256.0}
    assert tables[1][0] == {"context": 256, "us/token": pytest.approx(256.0), "cache KiB": 512.0}
    llama = next(r for r in tables[2] if r["model"] == "Llama 3 8B")
    assert llama["GiB at 32,768 tokens"] == 4.0
    assert llama["KiB/token"] == 128.0 and llama["GiB at 4,096 tokens"] == 0.5
    state = tables[2][-1]
    assert state["model"] == "Mamba 2.8B (state)" and state["KiB/token"] == 0.0
    assert state["GiB at 4,096 tokens"] == state["GiB at 32,768 tokens"] == (
        A.MAMBA_2_8B.state_bytes() / 2**30)


def test_cuda_peak_is_the_allocator_peak_above_what_was_allocated_before(monkeypatch):
    """Protects the GPU memory figure: the allocator's peak during fn, minus the memory that
    was allocated before it (the inputs), after synchronizing."""
    calls = []
    fake = {"synchronize": lambda: calls.append("sync"), "memory_allocated": lambda: 100,
            "reset_peak_memory_stats": lambda: calls.append("reset"),
            "max_memory_allocated": lambda: 350}
    for name, fn in fake.items():
        monkeypatch.setattr(torch.cuda, name, fn)
    assert attention_bench._cuda_peak(lambda: calls.append("fn")) == 250
    assert calls == ["sync", "reset", "fn", "sync"]


def test_benchmark_on_cuda_measures_each_row_with_the_allocator(monkeypatch):
    """Protects the GPU table: each row's memory is the allocator's peak of one causal call of
    its method on fresh (1, 1, n, 64) inputs with tiles of 256 (faked here without a GPU)."""
    from types import SimpleNamespace

    real_generator, real_randn, seen = torch.Generator, torch.randn, []

    def method(name):
        return lambda q, k, v, causal, bs: seen.append((name, q.shape, k.shape, v.shape, causal,
                                                        bs))

    monkeypatch.setattr(attention_bench, "METHODS",
                        {name: method(name) for name in attention_bench.METHODS})
    monkeypatch.setattr(attention_bench, "attention_cost", lambda lengths, *, methods, device,
                        repeat: [{"method": methods[0], "n": n, "ms": 1.0, "peak_bytes": 0}
                                 for n in lengths[:2]])
    monkeypatch.setattr(attention_bench, "_cuda_peak", lambda fn: fn() or 3 * 2**20)
    monkeypatch.setattr(torch, "Generator", lambda device: real_generator())
    monkeypatch.setattr(torch, "randn", lambda *shape, generator, device: real_randn(
        *shape, generator=generator))
    rows = attention_bench._whole_sequence_table(SimpleNamespace(device="cuda", quick=True))
    assert [r["peak MiB"] for r in rows] == [3.0] * 6
    assert [(name, n) for name, (_, _, n, _), *_ in seen] == [
        (m, n) for m in attention_bench.METHODS for n in (256, 512)]
    assert all(q == k == v == (1, 1, q[2], 64) and causal is True and bs == 256
               for _, q, k, v, causal, bs in seen)


def _fake_measurements(monkeypatch):
    """attention_cost and decode_cost replaced by clocks that report known figures: n / 100 ms
    and n MiB for a whole sequence of n; 1 µs and 2 KiB per token of context."""
    def fake_cost(lengths, *, methods, device, repeat):
        return [{"method": methods[0], "n": n, "ms": n / 100, "peak_bytes": n * 2**20}
                for n in lengths]

    def fake_decode(contexts):
        return {"context": list(contexts), "seconds": [1e-6 * c for c in contexts],
                "cache_bytes": [2048 * c for c in contexts]}

    monkeypatch.setattr(attention_bench, "attention_cost", fake_cost)
    monkeypatch.setattr(attention_bench, "decode_cost", fake_decode)


def test_benchmark_prints_each_table_under_its_heading_in_full(capsys, monkeypatch):
    """Protects everything `python -m sseq.bench attention --quick` prints, with the
    measurements faked: the three headings (the device named in the first), then each table
    with its columns and units in order — method, n, ms, peak MiB for lengths 2^8 … 2^12 (the
    three methods at each n); context, µs/token, cache KiB for contexts 2^8, 2^10, 2^12; the
    published models' KiB per token and GiB at 4,096 and 32,768 tokens, then Mamba's state,
    the same at any length."""
    from sseq.bench import format_table

    _fake_measurements(monkeypatch)
    bench.main(["attention", "--quick"])
    out = capsys.readouterr().out
    methods = ["sseq (direct)", "torch (fused)", "flash (sseq, tiled)"]
    assert methods == list(attention_bench.METHODS)
    whole = [{"method": m, "n": 2**p, "ms": 2**p / 100, "peak MiB": float(2**p)}
             for p in range(8, 13) for m in methods]
    decode = [{"context": 2**p, "us/token": float(2**p), "cache KiB": 2.0 * 2**p}
              for p in (8, 10, 12)]
    gib = 2**30
    models = [{"model": m.name, "KiB/token": m.kv_bytes_per_token() / 1024,
               "GiB at 4,096 tokens": m.kv_cache_bytes(4096) / gib,
               "GiB at 32,768 tokens": m.kv_cache_bytes(32768) / gib} for m in A.MODEL_SHAPES]
    state = A.MAMBA_2_8B.state_bytes() / gib
    models.append({"model": "Mamba 2.8B (state)", "KiB/token": 0.0, "GiB at 4,096 tokens": state,
                   "GiB at 32,768 tokens": state})
    assert out == (
        "## Causal attention over n tokens, one head, d = 64, float32, on cpu\n"
        f"{format_table(whole)}\n"
        "\n## One generated token with a KV cache (one layer: d_model 256, 4 heads), CPU\n"
        f"{format_table(decode)}\n"
        "\n## KV cache of published models (bf16), against Mamba's fixed state\n"
        f"{format_table(models)}\n")
    assert out.splitlines()[1] == "| method              | n    | ms   | peak MiB |"
    assert "| context | us/token | cache KiB |" in out.splitlines()


def test_decode_table_converts_seconds_and_bytes_exactly(monkeypatch):
    """Protects the decode table's units: seconds per token × 10⁶ is µs per token and bytes /
    1024 KiB (to the last bit), one row per context, and decode_cost's lists must line up: a
    context without a timing is an error, not a silently shorter table."""
    from types import SimpleNamespace

    from sseq import bench as sseq_bench

    tables = []
    _fake_measurements(monkeypatch)
    monkeypatch.setattr(sseq_bench, "format_table", lambda rows: tables.append(rows) or "")
    seconds = {256: 3.7e-5, 1024: 1.23e-4, 4096: 0.5e-3}
    monkeypatch.setattr(attention_bench, "decode_cost", lambda contexts: {
        "context": contexts, "seconds": [seconds[c] for c in contexts],
        "cache_bytes": [3 * c for c in contexts]})
    attention_bench.main(SimpleNamespace(device="cpu", quick=True))
    assert tables[1] == [{"context": c, "us/token": 1e6 * seconds[c], "cache KiB": 3 * c / 1024}
                         for c in (256, 1024, 4096)]
    monkeypatch.setattr(attention_bench, "decode_cost", lambda contexts: {
        "context": contexts, "seconds": [1e-6] * (len(contexts) - 1),
        "cache_bytes": [1] * len(contexts)})
    with pytest.raises(ValueError, match="zip"):
        attention_bench.main(SimpleNamespace(device="cpu", quick=True))


def test_whole_sequence_table_reports_what_attention_cost_measured(monkeypatch):
    """Protects the first table against wrong figures: each row's ms is the time measured for
    that method at that n and its peak MiB that measurement's bytes / 2^20, whatever the order
    attention_cost returns them in; rows sorted by n, then in METHODS' order."""
    from types import SimpleNamespace

    figures = {}

    def shuffled_cost(lengths, *, methods, device, repeat):
        rows = []
        for n in reversed(lengths):  # longest first
            figures[methods[0], n] = (len(figures) + 0.25, 1000 * len(figures) + 7)
            ms, peak = figures[methods[0], n]
            rows.append({"method": methods[0], "n": n, "ms": ms, "peak_bytes": peak})
        return rows

    monkeypatch.setattr(attention_bench, "attention_cost", shuffled_cost)
    rows = attention_bench._whole_sequence_table(SimpleNamespace(device="cpu", quick=False))
    order = list(attention_bench.METHODS)
    assert [(r["n"], r["method"]) for r in rows] == [
        (2**p, m) for p in range(8, 16) for m in order if p <= 13 or m != "sseq (direct)"]
    assert rows == [{"method": r["method"], "n": r["n"], "ms": figures[r["method"], r["n"]][0],
                     "peak MiB": figures[r["method"], r["n"]][1] / 2**20} for r in rows]


def test_benchmark_on_cuda_measures_fresh_seeded_inputs_without_autograd(monkeypatch):
    """Protects the GPU rows' inputs: for each row, q, k and v drawn in turn from a generator
    seeded 0 on the device (the same inputs on every run, whatever ran before), each (1, 1, n,
    64), and the call made without building an autograd graph (faked without a GPU)."""
    from types import SimpleNamespace

    real_generator, real_randn, seen, devices = torch.Generator, torch.randn, [], []

    def method(q, k, v, causal, block):
        seen.append((q, k, v, torch.is_grad_enabled()))

    monkeypatch.setattr(attention_bench, "METHODS",
                        {name: method for name in attention_bench.METHODS})
    monkeypatch.setattr(attention_bench, "attention_cost", lambda lengths, *, methods, device,
                        repeat: [{"method": methods[0], "n": n, "ms": 1.0, "peak_bytes": 0}
                                 for n in lengths[:2]])
    monkeypatch.setattr(attention_bench, "_cuda_peak", lambda fn: fn() or 0)
    monkeypatch.setattr(torch, "Generator", lambda device: devices.append(device)
                        or real_generator())
    monkeypatch.setattr(torch, "randn", lambda *shape, generator, device: devices.append(device)
                        or real_randn(*shape, generator=generator))
    torch.manual_seed(123)  # the global generator's state must not matter
    attention_bench._whole_sequence_table(SimpleNamespace(device="cuda", quick=True))
    assert set(devices) == {"cuda"} and len(seen) == 6
    for q, k, v, grad in seen:
        g = real_generator().manual_seed(0)
        n = q.shape[2]
        want = [real_randn(1, 1, n, 64, generator=g) for _ in range(3)]
        assert not grad and all(torch.equal(a, b) for a, b in zip((q, k, v), want, strict=True))
