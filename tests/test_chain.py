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
