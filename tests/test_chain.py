"""Chapter 2's timing of the chain: the counterparts compute what they claim to compute."""

from __future__ import annotations

import pytest
import torch

from sseq import chain
from sseq import nn as snn
from sseq.scan import linear_scan_ref


def test_states_known_is_the_rnn_when_fed_its_own_states():
    """The same cell on all positions at once returns the loop's outputs, given h_{t-1}."""
    rnn = snn.RNN(3, 7)
    x = torch.randn(2, 9, 3)
    h, _ = rnn(x)  # (b, l, n): h_1 .. h_l
    h_prev = torch.cat([torch.zeros(2, 1, 7), h[:, :-1]], dim=1)  # h_0 .. h_{l-1}
    torch.testing.assert_close(chain.states_known(rnn, x, h_prev), h, rtol=0, atol=1e-6)


def test_the_linear_scan_pass_is_the_linear_recurrence():
    """The parallel scan the timing runs equals the loop h_t = a h_{t-1} + b_t."""
    a = torch.full((2, 33, 4), 0.9)
    b = torch.randn(2, 33, 4)
    from sseq.scan import linear_scan

    torch.testing.assert_close(linear_scan(a, b, backend="parallel"), linear_scan_ref(a, b),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", chain.KINDS)
def test_every_kind_runs_forward_and_backward(kind):
    timing = chain.pass_seconds(kind, 2, 8, repeat=1)
    assert timing.median > 0 and len(timing.runs) == 1


@pytest.mark.parametrize(("call", "message"), [
    (lambda: chain.pass_seconds("gru", 2, 4), "kind must be one of"),
    (lambda: chain.pass_seconds("sseq RNN", 0, 4), "b must be a positive int, got 0"),
    (lambda: chain.states_known(snn.RNN(3, 4), torch.ones(2, 5, 3), torch.ones(2, 5, 3)),
     "h_prev must be (b, l, n) = (2, 5, 4), got (2, 5, 3)"),
])
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)


# ---- what each timed pass computes (issue 18, mutation testing) ---------------------------
# Oracles: float64 loops of each computation on the same seeded inputs (x drawn first from a
# generator seeded with ``seed``, then the stand-in states), differentiated by autograd.

B, L, D, N, SEED = 2, 5, 3, 4, 7


def _seeded_inputs():
    g = torch.Generator().manual_seed(SEED)
    x = torch.randn(B, L, D, generator=g)
    h_prev = torch.randn(B, L, N, generator=g).tanh()
    return x.double(), h_prev.double()


def _weights(module):
    return [p.detach().double().requires_grad_() for p in
            (module.weight_ih_l0, module.weight_hh_l0, module.bias_ih_l0, module.bias_hh_l0)]


def _rnn_loop(x, W_ih, W_hh, b_ih, b_hh):
    h, hs = torch.zeros(B, N, dtype=torch.float64), []
    for t in range(L):
        h = torch.tanh(x[:, t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh)
        hs.append(h)
    return torch.stack(hs, 1)  # (b, l, n)


def _grads_of(loss, params):
    return torch.autograd.grad(loss, params)


def _spy(monkeypatch, where, name, base):
    made = []

    class Spy(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(where, name, Spy)
    return made


def _assert_grads(module, expected):
    got = (module.weight_ih_l0, module.weight_hh_l0, module.bias_ih_l0, module.bias_hh_l0)
    for p, e in zip(got, expected, strict=True):
        assert p.grad is not None
        torch.testing.assert_close(p.grad.double(), e, rtol=1e-4, atol=1e-6)


def test_the_torch_rnn_pass_is_mean_squared_outputs_of_a_batch_first_rnn(monkeypatch):
    """"torch RNN": torch.nn.RNN(d, n), batch first, on the seeded x; the backward of the
    mean of its squared outputs (all positions, not the last state), against a float64 loop."""
    made = _spy(monkeypatch, torch.nn, "RNN", torch.nn.RNN)
    chain._pass("torch RNN", B, L, D, N, SEED)()
    (layer,) = made
    assert layer.batch_first and (layer.input_size, layer.hidden_size) == (D, N)
    x, _ = _seeded_inputs()
    params = _weights(layer)
    _assert_grads(layer, _grads_of(_rnn_loop(x, *params).square().mean(), params))


def test_the_sseq_rnn_pass_is_mean_squared_outputs_of_the_loop(monkeypatch):
    """"sseq RNN": sseq.nn.RNN(d, n) on the seeded x, the backward of the mean of its squared
    outputs at every position, against a float64 loop."""
    made = _spy(monkeypatch, chain, "RNN", snn.RNN)
    chain._pass("sseq RNN", B, L, D, N, SEED)()
    (rnn,) = made
    x, _ = _seeded_inputs()
    params = _weights(rnn)
    _assert_grads(rnn, _grads_of(_rnn_loop(x, *params).square().mean(), params))


def test_the_states_known_pass_is_one_cell_on_every_position(monkeypatch):
    """"states known": the cell applied once to every position, fed seeded stand-in states
    tanh(z) drawn after x; the backward of the mean of the squared new states."""
    made = _spy(monkeypatch, chain, "RNN", snn.RNN)
    chain._pass("states known", B, L, D, N, SEED)()
    (rnn,) = made
    x, h_prev = _seeded_inputs()
    W_ih, W_hh, b_ih, b_hh = params = _weights(rnn)
    h = torch.tanh(x @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh)
    _assert_grads(rnn, _grads_of(h.square().mean(), params))


def test_the_linear_scan_pass_differentiates_the_decay_and_the_drive(monkeypatch):
    """"linear scan": h_t = 0.9 h_{t-1} + W_ih x_t by the parallel scan, the backward of the
    mean of h² reaching both W_ih and the decay a = 0.9 (a parameter, as in an SSM); against
    a float64 loop."""
    made = _spy(monkeypatch, chain, "RNN", snn.RNN)
    calls = []

    def scan(a, b, backend):
        calls.append((a, backend))
        return linear_scan_ref(a, b)

    monkeypatch.setattr(chain, "linear_scan", scan)
    chain._pass("linear scan", B, L, D, N, SEED)()
    (rnn,) = made
    ((a, backend),) = calls
    assert backend == "parallel" and a.shape == (B, L, N) and a.requires_grad
    decay = a._base
    x, _ = _seeded_inputs()
    W_ih = rnn.weight_ih_l0.detach().double().requires_grad_()
    a64 = torch.full((N,), 0.9, dtype=torch.float64, requires_grad=True)
    h, hs = torch.zeros(B, N, dtype=torch.float64), []
    for t in range(L):
        h = a64 * h + x[:, t] @ W_ih.T
        hs.append(h)
    g_W, g_a = torch.autograd.grad(torch.stack(hs, 1).square().mean(), (W_ih, a64))
    torch.testing.assert_close(rnn.weight_ih_l0.grad.double(), g_W, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(decay.grad.double(), g_a, rtol=1e-4, atol=1e-6)


def test_pass_seconds_times_the_pass_with_its_documented_defaults(monkeypatch):
    """pass_seconds times _pass(kind, b, l, d, n, seed) with d = 4, n = 32, 7 rounds and seed 0
    by default (or those given), and returns time_fn's Timing; sizes of 1 are accepted."""
    passes, timed = [], []

    def fake_pass(*args):
        passes.append(args)
        return "the pass"

    def fake_time_fn(fn, *, repeat):
        timed.append((fn, repeat))
        return "the timing"

    monkeypatch.setattr(chain, "_pass", fake_pass)
    monkeypatch.setattr(chain, "time_fn", fake_time_fn)
    assert chain.pass_seconds("linear scan", 2, 8) == "the timing"
    assert chain.pass_seconds("torch RNN", 1, 1, d=1, n=1, repeat=3, seed=5) == "the timing"
    assert passes == [("linear scan", 2, 8, 4, 32, 0), ("torch RNN", 1, 1, 1, 1, 5)]
    assert timed == [("the pass", 7), ("the pass", 3)]


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(b=0, l=4), "b must be a positive int, got 0"),
    (dict(b=2, l=0), "l must be a positive int, got 0"),
    (dict(b=2, l=4, d=True), "d must be a positive int, got True"),
    (dict(b=2, l=4, d=2.0), "d must be a positive int, got 2.0"),
    (dict(b=2, l=4, n=-3), "n must be a positive int, got -3"),
    (dict(b=True, l=4), "b must be a positive int, got True"),
])
def test_pass_seconds_names_each_bad_size_in_full(kwargs, message):
    """Each size is named by its own letter with the value given, word for word."""
    with pytest.raises(ValueError) as info:
        chain.pass_seconds("sseq RNN", **kwargs)
    assert str(info.value) == message


def test_pass_seconds_names_an_unknown_kind_in_full():
    """The message lists the kinds accepted and the kind given, word for word."""
    with pytest.raises(ValueError) as info:
        chain.pass_seconds("gru", 2, 4)
    assert str(info.value) == ("kind must be one of ('sseq RNN', 'torch RNN', 'states known', "
                               "'linear scan'), got 'gru'")
