"""sseq.ssd: the chunked SSD algorithm, the recurrence and the quadratic form are one map.

The oracle is written here: y_t = Σ_{s≤t} exp(a_{s+1} + … + a_t) (C_t·B_s) x_s, plus the initial
state decayed to t, by explicit loops in float64. float64 paths are held to 1e-10.
"""

from __future__ import annotations

import math

import pytest
import torch

from sseq import scan, ssd

TOL = 1e-10
FORMS = {
    "sequential": lambda x, a, B, C, h0=None: ssd.ssd_sequential(x, a, B, C, h0),
    "quadratic": lambda x, a, B, C, h0=None: ssd.ssd_quadratic(x, a, B, C, h0),
    "chunked Q=8": lambda x, a, B, C, h0=None: ssd.ssd(x, a, B, C, 8, h0),
    "chunked Q=16": lambda x, a, B, C, h0=None: ssd.ssd(x, a, B, C, 16, h0),
    "chunked Q=64": lambda x, a, B, C, h0=None: ssd.ssd(x, a, B, C, 64, h0),
}


def inputs(l, *, b=2, h=3, p=4, n=5, seed=0, decay=1.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, l, h, p, generator=g, dtype=dtype)
    a = -decay * torch.rand(b, l, h, generator=g, dtype=dtype)
    B = torch.randn(b, l, h, n, generator=g, dtype=dtype)
    C = torch.randn(b, l, h, n, generator=g, dtype=dtype)
    h0 = torch.randn(b, h, p, n, generator=g, dtype=dtype)
    return x, a, B, C, h0


def oracle(x, a, B, C, h0):
    b, l, h, p = x.shape
    y = torch.zeros_like(x)
    for t in range(l):
        for s in range(t + 1):
            decay = torch.exp(a[:, s + 1:t + 1].sum(1))  # (b, h)
            score = (C[:, t] * B[:, s]).sum(-1)  # (b, h)
            y[:, t] += (decay * score)[..., None] * x[:, s]
        y[:, t] += torch.exp(a[:, :t + 1].sum(1))[..., None] * torch.einsum(
            "bhpn,bhn->bhp", h0, C[:, t])
    final = torch.exp(a.sum(1))[..., None, None] * h0
    for s in range(l):
        final += torch.exp(a[:, s + 1:].sum(1))[..., None, None] * \
            x[:, s, :, :, None] * B[:, s, :, None, :]
    return y, final


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("l", [1, 7, 37, 100])
@pytest.mark.parametrize("with_h0", [False, True])
def test_every_form_equals_the_oracle(form, l, with_h0):
    x, a, B, C, h0 = inputs(l)
    h0 = h0 if with_h0 else None
    y, final = FORMS[form](x, a, B, C, h0)
    want_y, want_final = oracle(x, a, B, C, torch.zeros_like(final) if h0 is None else h0)
    torch.testing.assert_close(y, want_y, rtol=TOL, atol=TOL)
    torch.testing.assert_close(final, want_final, rtol=TOL, atol=TOL)


@pytest.mark.parametrize("backend", [b for b in scan.BACKENDS if b != "triton"])
def test_chunked_form_with_every_scan_backend(backend):
    x, a, B, C, h0 = inputs(45)
    want = ssd.ssd_sequential(x, a, B, C, h0)
    got = ssd.ssd(x, a, B, C, 16, h0, backend=backend)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=TOL, atol=TOL)


def test_chunks_carry_the_state_across_calls():
    """Two halves, the second started from the first's final state, equal the whole."""
    x, a, B, C, _ = inputs(50)
    y1, s1 = ssd.ssd(x[:, :23], a[:, :23], B[:, :23], C[:, :23], 8)
    y2, s2 = ssd.ssd(x[:, 23:], a[:, 23:], B[:, 23:], C[:, 23:], 8, s1)
    y, s = ssd.ssd(x, a, B, C, 8)
    torch.testing.assert_close(torch.cat([y1, y2], 1), y, rtol=TOL, atol=TOL)
    torch.testing.assert_close(s2, s, rtol=TOL, atol=TOL)


def test_strong_decay_stays_finite_and_exact():
    """a = −40 per step: exp of a cumulative sum would underflow to 0/0 in a naive mask."""
    x, a, B, C, h0 = inputs(70, decay=40.0)
    want = ssd.ssd_sequential(x, a, B, C, h0)
    for got in (ssd.ssd_quadratic(x, a, B, C, h0), ssd.ssd(x, a, B, C, 16, h0)):
        assert all(torch.isfinite(t).all() for t in got)
        torch.testing.assert_close(got[0], want[0], rtol=TOL, atol=TOL)


def test_float32_chunked_is_close_to_float64():
    x, a, B, C, h0 = inputs(200)
    want = ssd.ssd_sequential(x, a, B, C, h0)
    x, a, B, C, h0 = (t.float() for t in (x, a, B, C, h0))
    got = ssd.ssd(x, a, B, C, 32, h0)
    torch.testing.assert_close(got[0].double(), want[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("form", ["quadratic", "chunked Q=8"])
def test_gradients_equal_those_of_the_recurrence(form):
    leaves = [t.requires_grad_() for t in inputs(21, b=1, h=2, p=3, n=2)]
    copies = [t.detach().clone().requires_grad_() for t in leaves]
    g = torch.Generator().manual_seed(5)
    gy, gs = torch.randn(1, 21, 2, 3, generator=g, dtype=torch.float64), torch.randn(
        1, 2, 3, 2, generator=g, dtype=torch.float64)
    y, s = FORMS[form](*leaves)
    ((y * gy).sum() + (s * gs).sum()).backward()
    y, s = ssd.ssd_sequential(*copies)
    ((y * gy).sum() + (s * gs).sum()).backward()
    for name, p, q in zip("x a B C h0".split(), leaves, copies, strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-9, atol=1e-10, msg=name)


def test_gradcheck_of_the_chunked_form():
    leaves = [t.requires_grad_() for t in inputs(11, b=1, h=1, p=2, n=2)]
    assert torch.autograd.gradcheck(lambda x, a, B, C, h0: ssd.ssd(x, a, B, C, 4, h0),
                                    tuple(leaves))


def test_segsum_is_the_sum_over_each_segment():
    a = torch.randn(2, 6, dtype=torch.float64)
    S = ssd.segsum(a)
    for t in range(6):
        for s in range(6):
            want = a[:, s + 1:t + 1].sum(-1) if s <= t else torch.full((2,), -math.inf)
            torch.testing.assert_close(S[:, t, s], want.to(S.dtype), rtol=0, atol=1e-12)


def test_time_forms_returns_one_time_per_length():
    out = ssd.time_forms([8, 16], repeat=1, heads=1, p=2, n=2, chunk_size=4)
    assert set(out) == {"sequential", "quadratic", "chunked"}
    assert all(len(v) == 2 and min(v) > 0 for v in out.values())


@pytest.mark.parametrize(("change", "error", "message"), [
    (dict(x=torch.zeros(2, 5, 3)), ValueError, r"x must have shape \(b, l, h, p\)"),
    (dict(x=torch.zeros(2, 5, 3, 4, dtype=torch.int64)), TypeError, "x must be a floating"),
    (dict(a=torch.zeros(2, 5, 4)), ValueError, r"a must have shape \(b, l, h\) = \(2, 5, 3\)"),
    (dict(B=torch.zeros(2, 5, 3)), ValueError, r"B must have shape \(b, l, h, n\)"),
    (dict(C=torch.zeros(2, 5, 3, 6)), ValueError, "B and C must have the same shape"),
    (dict(h0=torch.zeros(2, 3, 4)), ValueError, r"initial_state must be None or a tensor of "
                                                r"shape \(b, h, p, n\) = \(2, 3, 4, 5\)"),
    (dict(chunk_size=0), ValueError, "chunk_size must be a positive int, got 0"),
    (dict(chunk_size=True), ValueError, "chunk_size must be a positive int"),
])
def test_bad_inputs_name_the_argument(change, error, message):
    x, a, B, C, h0 = inputs(5, dtype=torch.float32)
    args = dict(x=x, a=a, B=B, C=C, h0=h0, chunk_size=4) | change
    with pytest.raises(error, match=message):
        ssd.ssd(args["x"], args["a"], args["B"], args["C"], args["chunk_size"], args["h0"])


def test_chunked_form_passes_its_backend_to_the_scan(monkeypatch):
    """ssd(..., backend=...) runs step 3's linear scan with that backend ("auto" by default)."""
    seen = []
    original = scan.linear_scan

    def spy(*args, **kwargs):
        seen.append(kwargs.get("backend"))
        return original(*args, **kwargs)

    monkeypatch.setattr(scan, "linear_scan", spy)
    x, a, B, C, h0 = inputs(9, b=1, h=1, p=2, n=2)
    ssd.ssd(x, a, B, C, 4, h0)
    for backend in ("reference", "parallel"):
        ssd.ssd(x, a, B, C, 4, h0, backend=backend)
    assert seen == ["auto", "reference", "parallel"]


@pytest.mark.parametrize("form", FORMS)
def test_an_initial_state_in_another_dtype_is_cast_to_xs(form):
    """A float32 initial state with float64 inputs: the outputs stay float64 and equal the
    oracle's with that state (converted exactly)."""
    x, a, B, C, h0 = inputs(10)
    h32 = h0.float()
    y, final = FORMS[form](x, a, B, C, h32)
    assert y.dtype == final.dtype == torch.float64
    want_y, want_final = oracle(x, a, B, C, h32.double())
    torch.testing.assert_close(y, want_y, rtol=TOL, atol=TOL)
    torch.testing.assert_close(final, want_final, rtol=TOL, atol=TOL)


def test_time_forms_times_each_form_on_its_own_seeded_inputs(monkeypatch):
    """time_forms: per length, in order, the median of time_fn(repeat=...) for each form, each
    run without autograd on inputs (batch, l, heads, p), decays a in [−0.1, 0], B and C with
    n states, of the dtype asked; the chunked form gets chunk_size; the seed fixes the inputs."""
    calls, timed = [], []

    def record(name):
        form = getattr(ssd, name)

        def spy(*args):
            assert not torch.is_grad_enabled()
            calls.append((name, args))
            return form(*args)
        return spy

    def fake_time_fn(fn, *, repeat):
        fn()
        timed.append(repeat)
        return type("T", (), {"median": float(len(timed))})()

    for name in ("ssd_sequential", "ssd_quadratic", "ssd"):
        monkeypatch.setattr(ssd, name, record(name))
    monkeypatch.setattr(ssd, "time_fn", fake_time_fn)
    out = ssd.time_forms([6, 10], batch=2, heads=3, p=4, n=5, chunk_size=4, repeat=2, seed=1,
                         dtype=torch.float64)
    assert out == {"sequential": [1.0, 4.0], "quadratic": [2.0, 5.0], "chunked": [3.0, 6.0]}
    assert timed == [2] * 6
    assert [name for name, _ in calls] == ["ssd_sequential", "ssd_quadratic", "ssd"] * 2
    for i, l in enumerate((6, 10)):
        (_, args), *others = calls[3 * i:3 * i + 3]
        x, a, B, C = args
        assert x.shape == (2, l, 3, 4) and a.shape == (2, l, 3)
        assert B.shape == C.shape == (2, l, 3, 5)
        assert x.dtype == a.dtype == B.dtype == C.dtype == torch.float64
        assert -0.1 <= a.min() < -0.05 and a.max() <= 0 and not torch.equal(B, C)
        assert all(s is t for o in others for s, t in zip(o[1][:4], args, strict=True))
        assert calls[3 * i + 2][1][4] == 4  # chunk_size
    first = calls[0][1]
    calls.clear()
    ssd.time_forms([6], batch=2, heads=3, p=4, n=5, chunk_size=4, repeat=1, seed=1,
                   dtype=torch.float64)
    assert all(torch.equal(s, t) for s, t in zip(calls[0][1], first, strict=True))
    calls.clear()
    ssd.time_forms([6], batch=2, heads=3, p=4, n=5, chunk_size=4, repeat=1, seed=2,
                   dtype=torch.float64)
    assert not torch.equal(calls[0][1][0], first[0])
    calls.clear()
    timed.clear()
    ssd.time_forms([8])  # the defaults: batch 1, 4 heads, p = n = 16, Q = 64, 3 rounds, float32
    x, a, B, C, Q = calls[2][1]
    assert x.shape == (1, 8, 4, 16) and B.shape == (1, 8, 4, 16) and x.dtype == torch.float32
    assert Q == 64 and timed == [3, 3, 3]
    g = torch.Generator().manual_seed(0)  # seed 0 by default: x is the generator's first draw
    assert torch.equal(x, torch.randn(1, 8, 4, 16, generator=g))


@pytest.mark.parametrize("form", FORMS)
def test_every_form_refuses_a_wrong_initial_state(form):
    """The three forms check the initial state alike: a wrong shape is named, not broadcast."""
    x, a, B, C, h0 = inputs(5)
    with pytest.raises(ValueError, match=r"initial_state must be None or a tensor of shape "
                                         r"\(b, h, p, n\) = \(2, 3, 4, 5\), got \(2, 3, 4, 1\)"):
        FORMS[form](x, a, B, C, h0[..., :1])


def test_chunks_of_one_step_are_the_recurrence():
    """chunk_size = 1 is allowed: every chunk one step, the scan across chunks is the whole
    recurrence (the oracle's outputs and final state)."""
    x, a, B, C, h0 = inputs(6)
    y, final = ssd.ssd(x, a, B, C, 1, h0)
    want_y, want_final = oracle(x, a, B, C, h0)
    torch.testing.assert_close(y, want_y, rtol=TOL, atol=TOL)
    torch.testing.assert_close(final, want_final, rtol=TOL, atol=TOL)


def test_segsum_builds_its_masks_on_the_input_device():
    """segsum's masks live on a's device (here the shape-only "meta" device, standing in for a
    GPU): the quadratic form runs there and keeps its shapes."""
    a = torch.zeros(2, 5, device="meta")
    S = ssd.segsum(a)
    assert S.device.type == "meta" and S.shape == (2, 5, 5)
    x, B = torch.zeros(1, 6, 2, 3, device="meta"), torch.zeros(1, 6, 2, 4, device="meta")
    y, final = ssd.ssd_quadratic(x, torch.zeros(1, 6, 2, device="meta"), B, B)
    assert y.shape == (1, 6, 2, 3) and final.shape == (1, 2, 3, 4) and y.device.type == "meta"


@pytest.mark.parametrize("name", ["x", "a", "B", "C"])
def test_a_non_float_argument_is_named(name):
    """Each of x, a, B, C refused when not floating-point, by its own name and its dtype."""
    x, a, B, C, h0 = inputs(5, dtype=torch.float32)
    args = dict(x=x, a=a, B=B, C=C)
    args[name] = args[name].long()
    with pytest.raises(TypeError, match=f"^{name} must be a floating-point torch.Tensor, got "
                                        f"torch.int64$"):
        ssd.ssd_sequential(args["x"], args["a"], args["B"], args["C"], h0)


@pytest.mark.parametrize(("change", "error", "message"), [
    (dict(x=[[1.0]]), TypeError, r"^x must be a floating-point torch.Tensor, got list$"),
    (dict(x=torch.zeros(2, 0, 3, 4)), ValueError,
     r"^x must have shape \(b, l, h, p\) with l >= 1, got \(2, 0, 3, 4\)$"),
    (dict(C=torch.zeros(2, 5, 2, 5)), ValueError,
     r"^C must have shape \(b, l, h, n\) = \(2, 5, 3\) \+ \(n,\), got \(2, 5, 2, 5\)$"),
    (dict(h0=[0.0]), ValueError, r"^initial_state must be None or a tensor of shape "
                                 r"\(b, h, p, n\) = \(2, 3, 4, 5\), got \(\)$"),
])
def test_bad_inputs_show_what_was_given(change, error, message):
    """The refusals show the type or the shape given: a list, an empty sequence, C's heads,
    an initial state that is no tensor (no shape: "()")."""
    x, a, B, C, h0 = inputs(5, dtype=torch.float32)
    args = dict(x=x, a=a, B=B, C=C, h0=h0) | change
    with pytest.raises(error, match=message):
        ssd.ssd_sequential(args["x"], args["a"], args["B"], args["C"], args["h0"])
