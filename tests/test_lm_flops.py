"""sseq.lm.flops: the counts from the shapes against PyTorch's FlopCounterMode."""

from __future__ import annotations

import pytest
import torch

from sseq import nn as snn
from sseq.lm import GPT, LSTMLM, MambaLM, forward_flops, generation_flops, train_step_flops

V = 13


def _counted(fn) -> int:
    # imported here: torch.utils.flop_counter imports Triton, which must come after the
    # conftest has switched Triton's CPU interpreter on (TRITON_INTERPRET)
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def _ids(b, l):
    return torch.randint(V, (b, l), generator=torch.Generator().manual_seed(0))


def test_gpt_forward_flops_match_the_counter():
    model = GPT(V, 32, 3, 4, 48, fused=False)  # the book's attention: two matrix products
    with torch.no_grad():
        assert _counted(lambda: model(_ids(2, 32))) == 2 * forward_flops(model, 32)
        assert _counted(lambda: model(_ids(1, 20))) == forward_flops(model, 20)
    # PyTorch's fused CPU attention kernel is invisible to the counter: all but attention
    model = GPT(V, 32, 3, 4, 48, fused=True)
    parts = forward_flops(model, 32, breakdown=True)
    with torch.no_grad():
        assert _counted(lambda: model(_ids(1, 32))) == parts["matmul"] + parts["head"]


def test_gpt_training_step_is_three_forward_passes_by_the_counter():
    model = GPT(V, 16, 2, 2, 32, fused=False)
    counted = _counted(lambda: model(_ids(4, 16)).sum().backward())
    # the backward pass skips one product: no gradient for the token ids' embedding input
    assert counted == pytest.approx(train_step_flops(model, 4, 16), rel=0.02)


def test_lstm_flops_match_the_counter_on_the_books_lstm():
    """torch.nn.LSTM's fused kernel hides its products from the counter; the book's LSTM
    (same weights, same equations, a loop of matrix products) shows them."""
    model = LSTMLM(V, 24, 2)
    layers = [snn.LSTM(24, 24) for _ in range(2)]
    idx = _ids(3, 10)

    def forward():
        h = model.embedding(idx)
        for layer in layers:
            h, _ = layer(h)
        return model.head(h)

    with torch.no_grad():
        assert _counted(forward) == 3 * forward_flops(model, 10)


def test_mamba_flops_match_the_counter_on_the_reference_scan():
    """The counter sees the products, the convolution and the scan's readout (an einsum in the
    reference scan, 2 of the scan's 6 FLOPs per state entry), not its elementwise update."""
    model = MambaLM(V, 32, 2, d_state=8, pad_vocab_size_multiple=8, backend="reference")
    parts = forward_flops(model, 12, breakdown=True)
    visible = parts["matmul"] + parts["conv"] + parts["head"] + parts["scan"] // 3
    with torch.no_grad():
        assert _counted(lambda: model(_ids(2, 12))) == 2 * visible


def test_generation_flops_flat_for_states_growing_for_the_cache():
    gpt, lstm, mamba = GPT(V, 512, 2, 2, 32, fused=False), LSTMLM(V, 32, 2), MambaLM(V, 32, 2)
    for model in (lstm, mamba):
        assert generation_flops(model, 10) == generation_flops(model, 500)
        assert generation_flops(model, 500, cache=False) > 100 * generation_flops(model, 500)
    cached = [generation_flops(gpt, t) for t in (100, 200, 300)]
    assert cached[2] - cached[1] == cached[1] - cached[0] > 0  # linear in t
    full = [generation_flops(gpt, t, cache=False) for t in (100, 200, 300)]
    assert full[2] - 2 * full[1] + full[0] > 0  # quadratic in t
    # the counter agrees for a cached step of the GPT at position 17
    with torch.no_grad():
        _, state = gpt.prefill(_ids(1, 16))
        assert _counted(lambda: gpt.step(_ids(1, 1)[:, 0], state)) == generation_flops(gpt, 17)


def test_argument_checks():
    with pytest.raises(TypeError, match="model must be a GPT, LSTMLM or MambaLM, got Linear"):
        forward_flops(torch.nn.Linear(2, 2), 3)
    with pytest.raises(TypeError, match="model must be a GPT, LSTMLM or MambaLM, got Linear"):
        generation_flops(torch.nn.Linear(2, 2), 3)
    with pytest.raises(ValueError, match="l must be a positive int, got 0"):
        forward_flops(LSTMLM(V, 8, 1), 0)
    with pytest.raises(ValueError, match="t must be a positive int, got 0"):
        generation_flops(LSTMLM(V, 8, 1), 0)


def test_generation_and_forward_flops_by_hand():
    """Protects each model's count, written out here from the shapes (independently of the
    module's helpers): a cached step reads one token and runs the head once; without the cache
    the whole text is read again (the GPT's last `context` tokens, Mamba's convolution over
    t + d_conv − 1 outputs) and the head still runs once; the breakdown names its parts."""
    d, layers = 16, 2
    gpt, lstm = GPT(V, 8, layers, 2, d, fused=False), LSTMLM(V, d, layers)
    mamba = MambaLM(V, d, layers, d_state=4, pad_vocab_size_multiple=8)
    head = 2 * d * V
    for t in (1, 5, 8, 11):
        w = min(t, 8)
        assert generation_flops(gpt, t) == layers * (24 * d * d + 4 * w * d) + head
        assert generation_flops(gpt, t, cache=False) == layers * (24 * w * d * d
                                                                  + 4 * w * w * d) + head
        assert generation_flops(lstm, t) == layers * 2 * 8 * d * d + head
        assert generation_flops(lstm, t, cache=False) == layers * 2 * t * 8 * d * d + head
        mixer = mamba.backbone.layers[0].mixer
        e, n, r, k = mixer.d_inner, mixer.d_state, mixer.dt_rank, mixer.d_conv
        per_token = 2 * (d * 2 * e + e * (r + 2 * n) + r * e + e * d) + 6 * e * n
        m_head = 2 * d * mamba.config.padded_vocab_size
        assert generation_flops(mamba, t) == layers * (per_token + 2 * e * k) + m_head
        assert generation_flops(mamba, t, cache=False) == \
            layers * (t * per_token + 2 * (t + k - 1) * e * k) + m_head
    assert set(forward_flops(gpt, 1, breakdown=True)) == {"matmul", "attention", "head"}
    assert set(forward_flops(lstm, 1, breakdown=True)) == {"matmul", "head"}
    assert set(forward_flops(mamba, 1, breakdown=True)) == {"matmul", "conv", "scan", "head"}
    assert forward_flops(lstm, 1) == layers * 2 * 8 * d * d + head


@pytest.mark.parametrize("bad", [True, 1.0, -2])
def test_lengths_must_be_positive_ints_not_bools(bad):
    """Protects the checks of l and t: True is an int in Python but not a length."""
    with pytest.raises(ValueError, match=f"l must be a positive int, got {bad!r}"):
        forward_flops(LSTMLM(V, 8, 1), bad)
    with pytest.raises(ValueError, match=f"t must be a positive int, got {bad!r}"):
        generation_flops(LSTMLM(V, 8, 1), bad)
