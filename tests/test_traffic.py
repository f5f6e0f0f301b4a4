"""sseq.traffic: the byte counter against hand counts, and the scan formulas against it."""

from __future__ import annotations

import pytest
import torch

from sseq import scan, traffic
from sseq.scan.bench_cpu import make_inputs


def test_an_elementwise_operation_reads_and_writes_its_tensors():
    x, y = torch.randn(100, 50), torch.randn(100, 50)
    t = traffic.count_bytes(lambda: x * y + 1)
    assert (t.read, t.written, t.operations) == (2 * 20000 + 20000, 2 * 20000, 2)
    assert t.total == t.read + t.written


def test_views_move_nothing_and_copies_do():
    x = torch.randn(64, 32)
    assert traffic.count_bytes(lambda: x.t().reshape(-1)[:10]).total == 2 * x.nbytes  # a copy
    assert traffic.count_bytes(lambda: x.view(32, 64).transpose(0, 1)[1:]).total == 0
    assert traffic.count_bytes(lambda: x.t().contiguous()).total == 2 * x.nbytes


def test_a_broadcast_input_is_read_once_and_allocations_read_nothing():
    row = torch.randn(1, 1000)
    t = traffic.count_bytes(lambda: row.expand(50, 1000) + 0.5)
    assert t.read == row.nbytes and t.written == 50 * row.nbytes
    assert traffic.count_bytes(lambda: torch.empty_like(row)).read == 0


def test_in_place_operations_count_as_written():
    x = torch.randn(10, 10)
    assert traffic.count_bytes(lambda: x.mul_(2)).written == x.nbytes


def test_a_materializing_scan_moves_at_least_the_formula():
    b, l, d, n = 1, 64, 32, 16
    inputs = make_inputs(b, l, d, n)
    formula = traffic.scan_bytes(b, l, d, n)
    for backend in ("reference", "parallel"):
        moved = traffic.count_bytes(
            lambda backend=backend: scan.selective_scan(**inputs, delta_softplus=True,
                                                        backend=backend)).total
        assert moved >= formula["materialized"] > 20 * formula["fused"]


@pytest.mark.skipif("cpu" not in scan.BACKENDS, reason="needs numba")
def test_the_fused_loop_is_one_opaque_kernel():
    inputs = make_inputs(1, 64, 32, 16)
    t = traffic.count_bytes(lambda: scan.selective_scan(**inputs, delta_softplus=True,
                                                        backend="cpu"))
    assert t.read == 0 and t.operations <= 5  # allocations of its outputs only


def test_scan_bytes_formula():
    out = traffic.scan_bytes(2, 3, 5, 7)
    assert out["fused"] == (4 * 2 * 3 * 5 + 2 * 2 * 3 * 7) * 4
    assert out["states"] == 2 * 3 * 5 * 7 * 4
    assert out["materialized"] == out["fused"] + 6 * out["states"]
    assert traffic.scan_bytes(2, 3, 5, 7, gate=False, itemsize=2)["fused"] == \
        (3 * 2 * 3 * 5 + 2 * 2 * 3 * 7) * 2


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(b=0, l=1, d=1, n=1), "b must be a positive int, got 0"),
    (dict(b=1, l=1.5, d=1, n=1), "l must be a positive int"),
    (dict(b=1, l=1, d=1, n=1, itemsize=0), "itemsize must be a positive int"),
])
def test_scan_bytes_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        traffic.scan_bytes(**kwargs)


def test_count_bytes_needs_a_function():
    with pytest.raises(TypeError, match="fn must be a function of no arguments"):
        traffic.count_bytes(torch.ones(3))


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(b=0, l=1, d=1, n=1), "b must be a positive int, got 0"),
    (dict(b=1, l=1.5, d=1, n=1), "l must be a positive int, got 1.5"),
    (dict(b=1, l=1, d=0, n=1), "d must be a positive int, got 0"),
    (dict(b=1, l=1, d=True, n=1), "d must be a positive int, got True"),
    (dict(b=1, l=1, d=1, n=-2), "n must be a positive int, got -2"),
    (dict(b=1, l=1, d=1, n=1, itemsize=0), "itemsize must be a positive int, got 0"),
])
def test_scan_bytes_names_each_bad_size_in_full(kwargs, message):
    """Each size is named by its own letter, with the value given, word for word (issue 18)."""
    with pytest.raises(ValueError) as info:
        traffic.scan_bytes(**kwargs)
    assert str(info.value) == message


def test_count_bytes_names_what_it_was_given():
    """The refusal of a non-callable names the type given, in full (issue 18)."""
    with pytest.raises(TypeError) as info:
        traffic.count_bytes(torch.ones(3))
    assert str(info.value) == "fn must be a function of no arguments, got Tensor"
