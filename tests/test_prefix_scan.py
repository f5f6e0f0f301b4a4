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
    ((torch.ones(2, 3), [1.0]), TypeError,
     r"^b must be a torch\.Tensor \(b, l, \.\.\.\), got list$"),
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


# --------------------------------------------------------------------------- what they draw
def test_traces_name_their_phases_and_positions():
    """Protects the traces' phases (the explorer colours and titles by them) and positions."""
    assert ps.trace_of("sequential", 4).rounds == [("scan", [0], [1]), ("scan", [1], [2]),
                                                   ("scan", [2], [3])]
    assert ps.trace_of("hillis_steele", 5).rounds == [("scan", [0, 1, 2, 3], [1, 2, 3, 4]),
                                                      ("scan", [0, 1, 2], [2, 3, 4]),
                                                      ("scan", [0], [4])]
    assert ps.trace_of("blelloch", 3).rounds == [("up", [0, 2], [1, 3]), ("up", [1], [3]),
                                                 ("down", [1], [3]), ("down", [0, 2], [1, 3])]


def _drawing(ax):
    """The cells (position, label, colour, style) and arrows (from, to, properties) drawn."""
    cells = [(t.get_position(), t.get_text(), t.get_color(), t.get_ha(), t.get_va(),
              t.get_fontsize()) for t in ax.texts if getattr(t, "arrow_patch", None) is None]
    arrows = [(a.xyann, a.xy, a.get_text(), a.arrowprops) for a in ax.texts
              if getattr(a, "arrow_patch", None) is not None]
    return cells, arrows


# Blelloch on 3 steps, padded to 4 (∅: the identity): the spans each cell holds, round by round.
BLELLOCH_3 = [["0", "1", "2", "∅"], ["0", "0–1", "2", "2"], ["0", "0–1", "2", "0–2"],
              ["0", "∅", "2", "0–1"], ["∅", "0", "0–1", "0–2"]]


@pytest.mark.parametrize("upto", [0, 2, 3, 4])
def test_plot_scan_draws_the_spans_and_arrows_of_each_round(upto):
    """Protects the explorer's drawing, checked cell by cell on Blelloch with 3 steps: rows of
    spans (green once they start at step 0), one arrow per combine (blue up, orange down, the
    down-sweep's hand-down dashed), the axes, ticks and the title with the phase."""
    from sseq.viz import PALETTE

    fig, ax = plt.subplots()
    ax.grid(True)
    assert ps.plot_scan(ax, "blelloch", 3, upto) is ax
    cells, arrows = _drawing(ax)
    green, black, blue, orange = (PALETTE[k] for k in ("accent", "reference", "state",
                                                       "attention"))
    assert cells == [((t, -k), label, green if label[0] == "0" else black, "center", "center", 8)
                     for k, row in enumerate(BLELLOCH_3[:upto + 1]) for t, label in enumerate(row)]
    solid_up, solid_down = ({"arrowstyle": "->", "color": c, "lw": 0.8} for c in (blue, orange))
    dashed = dict(solid_down, linestyle="--")
    want = [((0, -0.25), (1, -0.75), solid_up), ((2, -0.25), (3, -0.75), solid_up),
            ((1, -1.25), (3, -1.75), solid_up),
            ((1, -2.25), (3, -2.75), solid_down), ((3, -2.25), (1, -2.75), dashed),
            ((0, -3.25), (1, -3.75), solid_down), ((1, -3.25), (0, -3.75), dashed),
            ((2, -3.25), (3, -3.75), solid_down), ((3, -3.25), (2, -3.75), dashed)]
    rounds_drawn = [0, 2, 3, 5, 9][upto]
    assert [(s, t, "", p) for s, t, p in want[:rounds_drawn]] == arrows
    assert ax.get_xlim() == (-0.7, 3.7) and ax.get_ylim() == (-4.5, 0.5)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("position t", "round")
    assert list(ax.get_yticks()) == [0, -1, -2, -3, -4]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0", "1", "2", "3", "4"]
    phase, combines = {0: ("", 0), 2: (" (up-sweep)", 3), 3: (" (down-sweep)", 4),
                       4: (" (down-sweep)", 6)}[upto]
    assert ax.get_title() == f"Blelloch{phase}: round {upto} of 4, {combines} combines so far"
    assert not any(line.get_visible() for line in ax.xaxis.get_gridlines())
    plt.close(fig)


def test_plot_scan_defaults_and_rounds_out_of_range():
    """Protects the defaults (8 steps, every round) and that ``upto`` is clipped to 0 … depth."""
    fig, ax = plt.subplots()
    ps.plot_scan(ax, "hillis_steele")
    assert ax.get_title() == "Hillis–Steele: round 3 of 3, 17 combines so far"
    assert ax.get_xlim() == (-0.7, 7.7) and len(_drawing(ax)[0]) == 4 * 8
    ps.plot_scan(ax, "sequential", 3, upto=9)
    assert ax.get_title() == "Sequential: round 2 of 2, 2 combines so far"
    ps.plot_scan(ax, "sequential", 3, upto=-2)
    assert ax.get_title() == "Sequential: round 0 of 2, 0 combines so far"
    assert [c[1] for c in _drawing(ax)[0]] == ["0", "1", "2"]
    plt.close(fig)


def test_replaying_blelloch_with_numbers_gives_the_exclusive_states():
    """Protects the down-sweep's start in replay: the root becomes the identity (1, 0)."""
    a, b = pairs(1, 8, seed=4)
    steps = [(a[0, t].item(), b[0, t].item()) for t in range(8)]
    final = ps.replay(ps.trace_of("blelloch", 8), steps)[-1]
    assert final[0] == (1.0, 0.0)
    torch.testing.assert_close(torch.tensor([s[1] for s in final[1:]], dtype=torch.float64),
                               loop(a, b)[0, :7], rtol=1e-12, atol=1e-12)


def test_cost_rejects_non_integer_lengths():
    for bad in (2.0, 2.5, True):
        with pytest.raises(ValueError, match=f"l must be a positive int, got {bad!r}"):
            ps.cost("sequential", bad)


def test_scan_explorer_controls_and_what_they_draw(monkeypatch):
    """Protects the explorer: its controls (labels, values, range) and that moving them draws
    that algorithm's rounds on an axis of the book's size."""
    drawn, sizes, real_subplots = [], [], plt.subplots
    monkeypatch.setattr(ps, "plot_scan", lambda ax, *args: drawn.append((ax is not None, *args)))
    monkeypatch.setattr(plt, "subplots", lambda figsize: sizes.append(figsize) or real_subplots())
    explorer = ps.scan_explorer(6)
    choice, rounds = explorer.children[:2]
    assert choice.options == (("Hillis–Steele", "hillis_steele"), ("Blelloch", "blelloch"),
                              ("sequential", "sequential"))
    assert (choice.value, choice.description) == ("blelloch", "algorithm")
    assert (rounds.value, rounds.min, rounds.max, rounds.step, rounds.description) == (
        0, 0, 6, 1, "rounds")  # the most rounds: Blelloch padded to 8
    choice.value = "hillis_steele"
    rounds.value = 2
    assert drawn[-2:] == [(True, "hillis_steele", 6, 0), (True, "hillis_steele", 6, 2)]
    assert sizes[-1] == (7.2, 3.6)
    plt.close("all")
    assert ps.scan_explorer().children[1].max == 7  # 8 steps by default


def test_time_scans_times_each_method_on_its_seeded_inputs(monkeypatch):
    """Protects what time_scans times: each method on the same seeded (1, l, width) inputs,
    the backends by name, ``repeat`` rounds, the median; defaults width 256, 5 rounds, seed 0."""
    import types

    from sseq import bench, scan

    calls, backends, inputs = [], [], []
    real_linear, real_sequential = scan.linear_scan, ps.sequential_scan

    def timed(fn, *, repeat):
        calls.append((fn(), repeat))
        return types.SimpleNamespace(median=0.25)

    monkeypatch.setattr(bench, "time_fn", timed)
    monkeypatch.setattr(scan, "linear_scan", lambda a, b, backend: backends.append(backend)
                        or real_linear(a, b, backend=backend))
    monkeypatch.setattr(ps, "sequential_scan", lambda a, b: inputs.append((a, b))
                        or real_sequential(a, b))
    out = ps.time_scans([3, 5])
    names = ["sequential", "hillis_steele", "blelloch", "parallel backend"] + (
        ["fused cpu backend"] if "cpu" in scan.BACKENDS else [])
    assert list(out) == names and all(v == [0.25, 0.25] for v in out.values())
    assert backends == ["parallel", "cpu"][:len(names) - 3] * 2
    g = torch.Generator().manual_seed(0)
    for (a, b), l in zip(inputs, (3, 5), strict=True):
        assert torch.equal(a, torch.rand(1, l, 256, generator=g))
        assert torch.equal(b, torch.randn(1, l, 256, generator=g))
    for i, (h, repeat) in enumerate(calls):
        a, b = inputs[i // len(names)]
        assert repeat == 5
        torch.testing.assert_close(h, loop(a.double(), b.double()).float(), rtol=1e-5,
                                   atol=1e-5)
    calls.clear()
    ps.time_scans([2], width=3, repeat=2, seed=1)
    assert {repeat for _, repeat in calls} == {2} and inputs[-1][0].shape == (1, 2, 3)
    g = torch.Generator().manual_seed(1)
    assert torch.equal(inputs[-1][0], torch.rand(1, 2, 3, generator=g))


def test_a_trace_round_pairs_sources_with_targets_one_to_one():
    """Trace.record refuses a round whose sources and targets differ in number: replay and
    plot_scan pair them up, and a shorter list would silently drop combines."""
    trace = ps.Trace()
    trace.record("up", torch.tensor([0, 2]), range(1, 4, 2))
    assert trace.rounds == [("up", [0, 2], [1, 3])]
    with pytest.raises(ValueError, match=r"^sources and targets must pair up one to one, "
                                         r"got 2 sources and 3 targets$"):
        trace.record("down", [0, 1], [1, 2, 3])
    assert len(trace.rounds) == 1
