"""sseq.scan.prefix: the operator is associative, every scan equals a float64 loop (values and
gradients), the work and depth it counts equal the closed forms, the explorer draws the rounds.
"""

from __future__ import annotations

import math

import matplotlib
import pytest
import torch

from sseq.scan import prefix as ps

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LENGTHS = [1, 2, 3, 5, 8, 13, 16, 33, 100]
SCANS = ["sequential", "hillis_steele", "blelloch"]


def loop(a, b):
    """The oracle: h_t = a_t h_{t−1} + b_t, h_{−1} = 0, written out."""
    h, hs = torch.zeros_like(b[:, 0]), []
    for t in range(a.shape[1]):
        h = a[:, t] * h + b[:, t]
        hs.append(h)
    return torch.stack(hs, 1)


def pairs(*shape, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g, dtype=dtype) * 1.5 - 0.5,
            torch.randn(*shape, generator=g, dtype=dtype))


def test_combine_is_associative_with_identity():
    x, y, z = (pairs(4, 3, seed=s) for s in range(3))
    left = ps.combine(ps.combine(x, y), z)
    right = ps.combine(x, ps.combine(y, z))
    for u, v in zip(left, right, strict=True):
        torch.testing.assert_close(u, v, rtol=1e-12, atol=1e-12)
    one = (torch.ones(4, 3, dtype=torch.float64), torch.zeros(4, 3, dtype=torch.float64))
    for u, v in zip(ps.combine(one, x), x, strict=True):
        assert torch.equal(u, v)


def test_combine_is_the_composition_of_affine_maps():
    (a1, b1), (a2, b2) = (0.5, 1.0), (2.0, -3.0)
    a, b = ps.combine((a1, b1), (a2, b2))
    h = 0.7
    assert a * h + b == pytest.approx(a2 * (a1 * h + b1) + b2)


def test_combine_is_not_commutative():
    x, y = pairs(5, seed=0), pairs(5, seed=1)
    assert not torch.allclose(ps.combine(x, y)[1], ps.combine(y, x)[1])


@pytest.mark.parametrize("name", SCANS)
@pytest.mark.parametrize("l", LENGTHS)
def test_every_scan_equals_the_loop(name, l):
    a, b = pairs(2, l, 3, seed=l)
    torch.testing.assert_close(ps.ALGORITHMS[name](a, b), loop(a, b), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", SCANS)
def test_trailing_dimensions_and_complex_numbers(name):
    a, b = pairs(2, 11, 3, 2, seed=1)
    torch.testing.assert_close(ps.ALGORITHMS[name](a, b), loop(a, b), rtol=1e-12, atol=1e-12)
    ac = torch.polar(a.abs(), b)  # complex steps
    bc = torch.complex(b, a)
    torch.testing.assert_close(ps.ALGORITHMS[name](ac, bc), loop(ac, bc), rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize("name", ["hillis_steele", "blelloch"])
def test_gradients_equal_those_of_the_loop(name):
    a, b = (t.requires_grad_() for t in pairs(2, 19, 3, seed=4))
    a2, b2 = (t.detach().clone().requires_grad_() for t in (a, b))
    g = torch.randn(2, 19, 3, dtype=torch.float64)
    (ps.ALGORITHMS[name](a, b) * g).sum().backward()
    (loop(a2, b2) * g).sum().backward()
    torch.testing.assert_close(a.grad, a2.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(b.grad, b2.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", SCANS)
@pytest.mark.parametrize("l", LENGTHS)
def test_traced_work_and_depth_equal_the_closed_forms(name, l):
    trace = ps.trace_of(name, l)
    assert (trace.work, trace.depth) == ps.cost(name, l)


def test_the_closed_forms_grow_as_the_textbooks_say():
    for l in (2**k for k in range(1, 15)):
        k = int(math.log2(l))
        assert ps.cost("sequential", l) == (l - 1, l - 1)
        assert ps.cost("hillis_steele", l) == (l * k - l + 1, k)  # l log l − l + 1
        assert ps.cost("blelloch", l) == (2 * l - 2, 2 * k)
    assert ps.cost("blelloch", 1000) == (2 * 1023, 20)  # padded to 1024


@pytest.mark.parametrize("name", SCANS)
@pytest.mark.parametrize("l", [1, 6, 8, 13])
def test_replaying_the_trace_on_spans_gives_every_prefix(name, l):
    trace = ps.trace_of(name, l)
    spans = [(t, t) if t < l else None for t in range(trace.length)]
    final = ps.replay(trace, spans, ps._span, identity=None)[-1]
    if name == "blelloch" and l > 1:  # exclusive: position t holds steps 0 … t − 1
        assert final[0] is None  # (padded steps are the identity, None)
        assert final[1:] == [(0, min(t, l) - 1) for t in range(1, trace.length)]
    else:
        assert final == [(0, t) for t in range(l)]


def test_replaying_with_numbers_gives_the_states():
    a, b = pairs(1, 8, seed=3)
    trace = ps.trace_of("hillis_steele", 8)
    steps = [(a[0, t].item(), b[0, t].item()) for t in range(8)]
    final = ps.replay(trace, steps)[-1]
    torch.testing.assert_close(torch.tensor([s[1] for s in final], dtype=torch.float64),
                               loop(a, b)[0], rtol=1e-12, atol=1e-12)


def _arrows(ax):
    return [t for t in ax.texts if getattr(t, "arrow_patch", None) is not None]


@pytest.mark.parametrize("name", SCANS)
def test_the_explorer_draws_one_arrow_per_combine_so_far(name):
    trace = ps.trace_of(name, 8)
    fig, ax = plt.subplots()
    for upto in range(trace.depth + 1):
        ps.plot_scan(ax, name, 8, upto)
        combines = sum(len(r[2]) for r in trace.rounds[:upto])
        moves = sum(len(r[2]) for r in trace.rounds[:upto] if r[0] == "down")
        assert len(_arrows(ax)) == combines + moves  # the down-sweep also hands down
        assert f"round {upto} of {trace.depth}, {combines} combines so far" in ax.get_title()
    plt.close(fig)


def test_the_explorer_shows_finished_prefixes():
    fig, ax = plt.subplots()
    ps.plot_scan(ax, "hillis_steele", 4)
    labels = [t.get_text() for t in ax.texts if getattr(t, "arrow_patch", None) is None]
    assert labels[-4:] == ["0", "0–1", "0–2", "0–3"]  # the last row: every prefix
    plt.close(fig)


def test_scan_explorer_builds_its_widgets():
    explorer = ps.scan_explorer(8)
    kinds = [type(w).__name__ for w in explorer.children]
    assert kinds[:2] == ["Dropdown", "IntSlider"]
    assert explorer.children[1].max == ps.cost("sequential", 8)[1]
    plt.close("all")


def test_time_scans_measures_each_method():
    out = ps.time_scans([4, 8], width=2, repeat=1)
    assert {"sequential", "hillis_steele", "blelloch", "parallel backend"} <= set(out)
    assert all(len(v) == 2 and min(v) > 0 for v in out.values())


@pytest.mark.parametrize(("args", "error", "message"), [
    ((torch.ones(3), torch.ones(3)), ValueError, r"a must have shape \(b, l, \.\.\.\)"),
    ((torch.ones(2, 3), torch.ones(2, 4)), ValueError, r"b must have a's shape \(2, 3\)"),
    (([1.0], torch.ones(2, 3)), TypeError, "a must be a torch.Tensor"),
])
@pytest.mark.parametrize("name", SCANS)
def test_bad_inputs_name_the_argument(name, args, error, message):
    with pytest.raises(error, match=message):
        ps.ALGORITHMS[name](*args)


def test_cost_rejects_bad_arguments():
    with pytest.raises(ValueError, match="algorithm must be one of"):
        ps.cost("fast", 8)
    with pytest.raises(ValueError, match="l must be a positive int, got 0"):
        ps.cost("blelloch", 0)
