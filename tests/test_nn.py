"""sseq.nn's recurrent layers against torch.nn: same parameters, outputs, states and gradients.

Oracle: ``torch.nn.RNN``/``LSTM``/``GRU`` (one layer, batch_first=True) and the single-step
``torch.nn.RNNCell``/``LSTMCell``/``GRUCell``. A state_dict is moved in both directions.
Tolerances: 1e-6 absolute in float32 (a handful of roundings per step), 1e-12 in float64.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from sseq import nn as snn

LAYERS = {
    "rnn-tanh": (snn.RNN, torch.nn.RNN, {}),
    "rnn-relu": (snn.RNN, torch.nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (snn.LSTM, torch.nn.LSTM, {}),
    "gru": (snn.GRU, torch.nn.GRU, {}),
}
D, H, B, L = 3, 5, 4, 7


def make_pair(name, dtype=torch.float32):
    ours_cls, torch_cls, kwargs = LAYERS[name]
    ours = ours_cls(D, H, **kwargs).to(dtype)
    theirs = torch_cls(D, H, batch_first=True, **kwargs).to(dtype)
    return ours, theirs


def initial_state(name, dtype=torch.float32):
    g = torch.Generator().manual_seed(7)
    h0 = torch.randn(1, B, H, generator=g, dtype=dtype)
    return (h0, torch.randn(1, B, H, generator=g, dtype=dtype)) if name == "lstm" else h0


def flat(state):
    return torch.cat([s.flatten() for s in state]) if isinstance(state, tuple) else state.flatten()


@pytest.mark.parametrize("name", LAYERS)
def test_parameter_names_shapes_and_init_range_match_torch(name):
    ours, theirs = make_pair(name)
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
           {k: v.shape for k, v in theirs.state_dict().items()}
    bound = 1 / H**0.5
    assert all(p.abs().max() <= bound for p in ours.parameters())


@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize("direction", ["ours->torch", "torch->ours"])
@pytest.mark.parametrize("name", LAYERS)
def test_state_dict_moves_both_ways_with_the_same_outputs(name, direction, with_state):
    ours, theirs = make_pair(name)
    if direction == "ours->torch":
        theirs.load_state_dict(ours.state_dict())
    else:
        ours.load_state_dict(theirs.state_dict())
    x = torch.randn(B, L, D)
    args = (x, initial_state(name)) if with_state else (x,)
    out_ours, state_ours = ours(*args)
    out_theirs, state_theirs = theirs(*args)
    assert out_ours.shape == (B, L, H)
    torch.testing.assert_close(out_ours, out_theirs, rtol=0, atol=1e-6)
    assert type(state_ours) is type(state_theirs)
    torch.testing.assert_close(flat(state_ours), flat(state_theirs), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", LAYERS)
def test_gradients_match_torch(name):
    ours, theirs = make_pair(name, torch.float64)
    theirs.load_state_dict(ours.state_dict())
    grads = []
    for layer in (ours, theirs):
        x = torch.randn(B, L, D, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        x.requires_grad_(True)
        state = initial_state(name, torch.float64)
        leaves = list(state) if isinstance(state, tuple) else [state]
        for s in leaves:
            s.requires_grad_(True)
        out, final = layer(x, state)
        loss = (out**2).sum() + flat(final).sin().sum()
        grads.append(torch.autograd.grad(loss, [x, *leaves, *layer.parameters()]))
    for g_ours, g_theirs in zip(*grads, strict=True):
        torch.testing.assert_close(g_ours, g_theirs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell, torch_cell", [
    (snn.rnn_cell, torch.nn.RNNCell), (snn.lstm_cell, torch.nn.LSTMCell),
    (snn.gru_cell, torch.nn.GRUCell)])
def test_cells_match_torch_single_step_cells(cell, torch_cell):
    ref = torch_cell(D, H).double()
    x = torch.randn(B, D, dtype=torch.float64)
    h = torch.randn(B, H, dtype=torch.float64)
    weights = (ref.weight_ih, ref.weight_hh, ref.bias_ih, ref.bias_hh)
    if cell is snn.lstm_cell:
        c = torch.randn(B, H, dtype=torch.float64)
        torch.testing.assert_close(cell(x, (h, c), *weights), ref(x, (h, c)))
    else:
        torch.testing.assert_close(cell(x, h, *weights), ref(x, h))


def test_lstm_cell_against_its_equations_written_out():
    # The constant error carousel: with f = 1 and i = 0 the cell is copied unchanged.
    h = 2
    w_ih, w_hh = torch.zeros(4 * h, 1), torch.zeros(4 * h, h)
    b = torch.tensor([-50.0] * h + [50.0] * h + [0.0] * h + [0.0] * h)  # i≈0, f≈1, g=0, o=1/2
    c = torch.tensor([[0.3, -2.0]])
    h_new, c_new = snn.lstm_cell(torch.ones(1, 1), (torch.zeros(1, h), c), w_ih, w_hh, b,
                                 torch.zeros(4 * h))
    torch.testing.assert_close(c_new, c)
    torch.testing.assert_close(h_new, 0.5 * torch.tanh(c))


@pytest.mark.parametrize("bad, error, match", [
    (torch.randn(B, D), ValueError, r"shape \(b, l, 3\)"),
    (torch.randn(B, L, D + 1), ValueError, r"got \(4, 7, 4\)"),
    (torch.randn(B, 0, D), ValueError, "l >= 1"),
    (torch.ones(B, L, D, dtype=torch.long), TypeError, "dtype torch.float32"),
    (torch.randn(B, L, D, dtype=torch.float64), TypeError, "got torch.float64"),
    ([[0.0] * D] * L, TypeError, "torch.Tensor"),
])
@pytest.mark.parametrize("name", LAYERS)
def test_bad_input_is_rejected_with_a_clear_message(name, bad, error, match):
    with pytest.raises(error, match=match):
        make_pair(name)[0](bad)


def test_bad_state_and_sizes_are_rejected():
    x = torch.randn(B, L, D)
    with pytest.raises(ValueError, match=r"\(1, b, n\) = \(1, 4, 5\)"):
        snn.GRU(D, H)(x, torch.zeros(B, H))
    with pytest.raises(TypeError, match=r"\(h_0, c_0\)"):
        snn.LSTM(D, H)(x, (torch.zeros(1, B, H),))
    with pytest.raises(ValueError, match="hidden_size"):
        snn.RNN(D, 0)
    with pytest.raises(ValueError, match="input_size"):
        snn.LSTM(True, H)
    with pytest.raises(ValueError, match="nonlinearity"):
        snn.RNN(D, H, nonlinearity="sigmoid")


@pytest.mark.parametrize("name", LAYERS)
def test_a_state_of_another_dtype_is_refused_by_name(name):
    layer = make_pair(name)[0]
    state = torch.zeros(1, B, H, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"state must have dtype torch.float32 like the layer's "
                                        r"weights, got torch.float64"):
        layer(torch.randn(B, L, D), (state, state) if name == "lstm" else state)


@pytest.mark.parametrize("name", LAYERS)
def test_numpy_integer_sizes_are_accepted(name):
    cls = type(make_pair(name)[0])
    torch.manual_seed(0)
    layer = cls(np.int64(D), np.int32(H))
    torch.manual_seed(0)
    twin = cls(D, H)
    assert (layer.input_size, layer.hidden_size) == (D, H) and type(layer.input_size) is int
    x = torch.randn(B, L, D)
    torch.testing.assert_close(layer(x)[0], twin(x)[0], rtol=0, atol=0)
    for backend in ("sseq", "torch"):
        head = snn.RecurrentHead("lstm", np.int64(6), np.int64(8), np.int64(3), backend=backend)
        assert head(torch.randint(0, 6, (B, L))).shape == (B, 3)


@pytest.mark.parametrize("dtype", [torch.int32, torch.uint8, torch.int16])
def test_recurrent_head_reads_tokens_of_any_integer_dtype(dtype):
    """Token ids are indices: like nn.Embedding, any integer dtype (issue 9: one_hot refused
    all but int64)."""
    head = snn.RecurrentHead("gru", 6, 8, 3)
    tokens = torch.randint(0, 6, (B, L))
    torch.testing.assert_close(head(tokens.to(dtype)), head(tokens), rtol=0, atol=0)


@pytest.mark.parametrize("tokens, error, message", [
    (torch.zeros(B, 0, dtype=torch.long), ValueError,
     r"token ids x must have shape \(b, l\) with b, l >= 1, got \(4, 0\)"),
    (torch.zeros(0, L, dtype=torch.long), ValueError, r"got \(0, 7\)"),
    (torch.zeros(B, L, dtype=torch.bool), TypeError,
     "token ids x must be integers, got torch.bool"),
])
def test_recurrent_head_refuses_empty_or_boolean_tokens(tokens, error, message):
    with pytest.raises(error, match=message):
        snn.RecurrentHead("rnn", 6, 8, 3)(tokens)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_recurrent_head_shapes_tokens_and_backends(cell):
    head = snn.RecurrentHead(cell, 6, 8, 3)
    tokens = torch.randint(0, 6, (B, L))
    out = head(tokens)
    assert out.shape == (B, 3)
    one_hot = torch.nn.functional.one_hot(tokens, 6).float()
    torch.testing.assert_close(out, head(one_hot))
    fast = snn.RecurrentHead(cell, 6, 8, 3, backend="torch")
    assert isinstance(fast.recurrent, torch.nn.RNNBase)
    fast.load_state_dict(head.state_dict())
    torch.testing.assert_close(fast(tokens), out, rtol=0, atol=1e-6)
    every = snn.RecurrentHead(cell, 6, 8, 3, readout="all")
    assert every(tokens).shape == (B, L, 3)


@pytest.mark.parametrize("backend", ["sseq", "torch"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_recurrent_head_last_reads_the_last_position(cell, backend):
    """Protects: ``readout="last"`` reads out h_l, the state after the whole sequence.

    Its output is the ``"all"`` head's output at the last position (same weights), not at
    any other; and it depends on the last input, which a causal layer's earlier states
    cannot see.
    """
    torch.manual_seed(0)
    last = snn.RecurrentHead(cell, D, H, 2, backend=backend)
    every = snn.RecurrentHead(cell, D, H, 2, readout="all", backend=backend)
    every.load_state_dict(last.state_dict())
    last, every = last.double(), every.double()
    x = torch.randn(B, L, D, dtype=torch.float64)
    out, all_out = last(x), every(x)
    torch.testing.assert_close(out, all_out[:, -1], rtol=1e-12, atol=1e-12)
    assert (out - all_out[:, :-1].transpose(0, 1)).abs().amax(dim=(1, 2)).min() > 1e-3
    x_changed = x.clone()
    x_changed[:, -1] += 1.0
    assert (last(x_changed) - out).abs().amin(dim=1).min() > 1e-4


def test_recurrent_head_accepts_a_layer_factory_and_rejects_bad_arguments():
    head = snn.RecurrentHead(functools.partial(torch.nn.GRU, batch_first=True), 2, 4, 1)
    assert head(torch.randn(B, L, 2)).shape == (B, 1)
    with pytest.raises(ValueError, match="cell must be one of"):
        snn.RecurrentHead("transformer", 2, 4, 1)
    with pytest.raises(TypeError, match="cell must be a name or a callable"):
        snn.RecurrentHead(3, 2, 4, 1)
    with pytest.raises(ValueError, match="readout"):
        snn.RecurrentHead("rnn", 2, 4, 1, readout="mean")
    with pytest.raises(ValueError, match="backend"):
        snn.RecurrentHead("rnn", 2, 4, 1, backend="jax")
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 2\)"):
        snn.RecurrentHead("rnn", 2, 4, 1)(torch.full((B, L), 2))


@pytest.mark.parametrize("layer", [snn.LSTM(D, H), torch.nn.LSTM(D, H, batch_first=True)])
def test_set_forget_bias_sets_the_forget_gate_only(layer):
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    snn.set_forget_bias(layer, 3.0)
    total = layer.bias_ih_l0 + layer.bias_hh_l0  # (4h,), gates (i, f, g, o)
    torch.testing.assert_close(total[H:2 * H], torch.full((H,), 3.0))
    for name in ("bias_ih_l0", "bias_hh_l0"):
        keep = torch.ones(4 * H, dtype=torch.bool)
        keep[H:2 * H] = False
        torch.testing.assert_close(getattr(layer, name)[keep], before[name][keep])
    head = snn.RecurrentHead("lstm", 2, H, 1, forget_bias=2.0)
    r = head.recurrent
    torch.testing.assert_close((r.bias_ih_l0 + r.bias_hh_l0)[H:2 * H], torch.full((H,), 2.0))
    with pytest.raises(TypeError, match="needs an LSTM"):
        snn.set_forget_bias(snn.GRU(D, H))


# --- what the mutation tests found untested (make mutants) ------------------------------------


@pytest.mark.parametrize("name", LAYERS)
def test_final_states_have_torchs_shape(name):
    """Protects the final state's layout, (1, b, h) per tensor as in torch.nn (the other
    tests compare flattened states, which a (b, 1, h) layout would pass)."""
    ours, theirs = make_pair(name)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(B, L, D)
    for got, want in zip(*(s if isinstance(s, tuple) else (s,) for s in (ours(x)[1],
                                                                         theirs(x)[1])),
                         strict=True):
        assert got.shape == want.shape == (1, B, H)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name, doc", [("lstm", r"\(h_0, c_0\), two tensors \(1, b, n\)"),
                                       ("gru", r"a tensor \(1, b, n\)"),
                                       ("rnn-tanh", r"a tensor \(1, b, n\)")])
def test_a_state_of_the_wrong_kind_is_described(name, doc):
    """Protects the message that says what a state must be, for each kind of layer."""
    ours, _ = make_pair(name)
    with pytest.raises(TypeError, match=f"^state must be {doc}$"):
        ours(torch.randn(B, L, D), [1.0, 2.0, 3.0] if name == "lstm" else "h0")


def test_sizes_and_inputs_are_refused_by_name():
    """Protects the names in the messages of the layers and the head."""
    for args, name in (((0, 3), "input_size"), ((3, 0), "hidden_size")):
        with pytest.raises(ValueError, match=f"^{name} must be"):
            snn.RNN(*args)
    for args, name in (((0, 4, 1), "d_in"), ((2, 0, 1), "d_hidden"), ((2, 4, 0), "d_out")):
        with pytest.raises(ValueError, match=f"^{name} must be"):
            snn.RecurrentHead("gru", *args)
    with pytest.raises(TypeError, match="^x must be a torch.Tensor, got list$"):
        snn.GRU(D, H)([[0.0] * D])
    with pytest.raises(TypeError, match="^cell must be a name or a callable, got int$"):
        snn.RecurrentHead(3, 2, 4, 1)
    with pytest.raises(TypeError, match="^set_forget_bias needs an LSTM layer, got GRU$"):
        snn.set_forget_bias(snn.GRU(D, H))


def test_set_forget_bias_defaults_to_one():
    """Protects the default forget-gate bias, 1 (Jozefowicz et al., 2015)."""
    layer = snn.set_forget_bias(snn.LSTM(D, H))
    torch.testing.assert_close((layer.bias_ih_l0 + layer.bias_hh_l0)[H:2 * H], torch.ones(H))


def test_recurrent_head_one_hot_has_the_whole_vocabulary():
    """Protects the one-hot width: d_in columns even when the batch uses only small ids, and
    float (b, l) inputs are not mistaken for tokens (the layer refuses them)."""
    head = snn.RecurrentHead("gru", 6, 8, 3)
    tokens = torch.randint(0, 3, (B, L))  # ids 0..2 of 6
    one_hot = torch.nn.functional.one_hot(tokens, 6).float()
    torch.testing.assert_close(head(tokens), head(one_hot), rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"x must have shape \(b, l, 6\)"):
        head(tokens.float())
