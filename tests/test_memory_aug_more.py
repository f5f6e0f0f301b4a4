"""sseq.memory_aug, Chapter 9's "memory beyond the state": the Switch layer, the Perceiver's
latents, Mixture-of-Depths and the Universal Transformer, the atlas of costs and the
addressing explorer, each against an oracle written here from the papers' equations (float64
loops in numpy, closed forms, hand-computed tiny cases), with every error message in full."""

from __future__ import annotations

import math
import re

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from sseq.memory_aug import atlas, depth, explore, ntm, perceiver, switch
from sseq.viz import PALETTE


def _gen(seed):
    return torch.Generator().manual_seed(seed)


# --- the Switch layer (Fedus et al.) -----------------------------------------------------------


def switch_oracle(x, w_router, w_in, w_out, capacity_factor):
    """Fedus et al.'s top-1 routing written token by token in numpy float64: p = softmax(W_r
    x), e = argmax p, capacity ⌈cf · T / E⌉ filled in token order, y = p_e · FFN_e(x) for a
    kept token and 0 for a dropped one; and the auxiliary loss E · Σ_i f_i P_i."""
    tokens = x.reshape(-1, x.shape[-1])
    n_experts = w_router.shape[0]
    cap = math.ceil(capacity_factor * len(tokens) / n_experts)
    load, ys, probs, chosen, kept = [0] * n_experts, [], [], [], []
    for tok in tokens:
        logits = w_router @ tok
        p = np.exp(logits - logits.max())
        p /= p.sum()
        e = int(np.argmax(p))
        load[e] += 1
        kept.append(load[e] <= cap)
        probs.append(p)
        chosen.append(e)
        hidden = np.maximum(tok @ w_in[e], 0.0)
        ys.append(p[e] * (hidden @ w_out[e]) if load[e] <= cap else np.zeros_like(tok))
    probs = np.array(probs)
    f = np.array([chosen.count(i) for i in range(n_experts)]) / len(tokens)
    aux = n_experts * sum(f[i] * probs[:, i].mean() for i in range(n_experts))
    return np.array(ys).reshape(x.shape), np.array(chosen), aux, np.array(kept)


def _switch_layer(d=6, f=10, n_experts=3, cf=1.0, seed=0):
    torch.manual_seed(seed)
    return switch.SwitchFFN(d, f, n_experts, capacity_factor=cf).double()


@pytest.mark.parametrize("cf", [0.4, 1.0, 3.0])
def test_switch_layer_and_its_loop_match_the_papers_routing_in_float64(cf):
    """Protects the Switch layer's output, choices, drops and load-balancing loss, and the
    reference loop's output, against an independent float64 oracle, with capacities that
    drop many, some and no tokens."""
    layer = _switch_layer(cf=cf)
    x = torch.randn(2, 9, 6, dtype=torch.float64, generator=_gen(4))
    y, r = layer(x)
    want, chosen, aux, kept = switch_oracle(x.numpy(), layer.router.weight.detach().numpy(),
                                      layer.w_in.detach().numpy(), layer.w_out.detach().numpy(), cf)
    np.testing.assert_allclose(y.detach().numpy(), want, rtol=0, atol=1e-12)
    np.testing.assert_allclose(switch.switch_ref(layer, x).detach().numpy(), want, atol=1e-12)
    assert r["expert"].tolist() == chosen.tolist()
    assert float(r["aux_loss"].detach()) == pytest.approx(aux, rel=1e-12)
    assert r["aux_loss"].dtype == torch.float64 and r["aux_loss"].shape == ()
    assert r["kept"].tolist() == kept.tolist()
    assert int((~r["kept"]).sum()) == {0.4: 9, 1.0: 2, 3.0: 0}[cf]   # many, some, none dropped


def test_switch_route_returns_the_router_probabilities_gate_and_choice():
    """Protects route(): probs = softmax(W_r x) over the experts for all b · l tokens, the
    gate is the chosen expert's probability, and kept is the complement of the drops."""
    layer = _switch_layer(cf=0.5)
    x = torch.randn(3, 4, 6, dtype=torch.float64, generator=_gen(5))
    r = layer.route(x)
    logits = x.reshape(12, 6).numpy() @ layer.router.weight.detach().numpy().T
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(r["probs"].detach().numpy(), probs, atol=1e-14)
    assert r["expert"].tolist() == probs.argmax(1).tolist()
    np.testing.assert_allclose(r["gate"].detach().numpy(), probs.max(1), atol=1e-14)
    assert torch.equal(r["kept"], ~switch.dropped_tokens(r["expert"], 3, 0.5))
    assert sorted(r) == ["expert", "gate", "kept", "probs"]


def test_capacity_is_the_ceiling_of_the_equal_share_times_the_factor():
    """Protects capacity = ⌈cf · T / E⌉ (rounded up, not down or to nearest)."""
    assert switch.capacity(8, 4, 1.0) == 2
    assert switch.capacity(10, 4, 1.0) == 3                      # 2.5 up
    assert switch.capacity(9, 4, 1.0) == 3                       # 2.25 up, not to nearest
    assert switch.capacity(10, 4, 1.25) == 4                     # 3.125
    assert switch.capacity(3, 4, 0.5) == 1
    assert switch.capacity(12, 3, 2.0) == 8


def test_dropped_tokens_first_come_first_served_by_hand():
    """Protects the drops: each expert keeps the first ⌈cf · T / E⌉ tokens routed to it in
    token order, whatever the other experts receive."""
    expert = torch.tensor([0, 0, 0, 1, 0, 2])                    # T = 6, E = 3: capacity 2
    assert switch.dropped_tokens(expert, 3, 1.0).tolist() == [False, False, True, False, True,
                                                              False]
    assert switch.dropped_tokens(expert, 3, 1.5).tolist() == [False] * 4 + [True, False]  # 3
    assert not switch.dropped_tokens(expert, 3, 2.0).any()                              # 4
    assert switch.dropped_tokens(expert, 3, 0.1).tolist() == [False, True, True, False, True,
                                                              False]   # capacity 1
    assert switch.dropped_tokens(torch.tensor([2, 2, 1]), 3, 1.0).tolist() == [False, True,
                                                                               False]
    empty = switch.dropped_tokens(torch.zeros(0, dtype=torch.long), 3, 1.0)
    assert empty.shape == (0,) and empty.dtype == torch.bool


@pytest.mark.parametrize("expert, message", [
    ([0, 1], "expert must be a 1-d integer tensor (T,), got list ()"),
    (torch.zeros(3), "expert must be a 1-d integer tensor (T,), got torch.float32 (3,)"),
    (torch.zeros(2, 3, dtype=torch.long),
     "expert must be a 1-d integer tensor (T,), got torch.int64 (2, 3)"),
    (torch.tensor([0, 4, 1]), "expert must lie in [0, n_experts) = [0, 4), got values from 0 "
                              "to 4"),
    (torch.tensor([2, -1]), "expert must lie in [0, n_experts) = [0, 4), got values from -1 "
                            "to 2"),
])
def test_dropped_tokens_rejects_bad_choices(expert, message):
    """Protects the checks of dropped_tokens' choices, with their full messages."""
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        switch.dropped_tokens(expert, 4, 1.0)


def test_dropped_tokens_accepts_the_first_and_last_expert():
    """Protects the range check's bounds: experts 0 and E − 1 are valid choices."""
    assert switch.dropped_tokens(torch.tensor([3, 0, 3]), 4, 1.0).tolist() == [False, False, True]
    assert switch.dropped_tokens(torch.tensor([1, 1, 1]), 2, 1.0).tolist() == [False, False,
                                                                               True]  # one expert


def test_load_balancing_loss_against_the_sum_over_experts():
    """Protects L_aux = E · Σ_i f_i P_i against a float64 loop, with an expert that nobody
    chose (its f_i is 0: the counts must still have E entries)."""
    probs = torch.softmax(torch.randn(7, 4, dtype=torch.float64, generator=_gen(1)), -1)
    expert = torch.tensor([0, 2, 2, 1, 0, 2, 2])
    want = 4 * sum(expert.tolist().count(i) / 7 * float(probs[:, i].mean()) for i in range(4))
    got = switch.load_balancing_loss(probs, expert)
    assert float(got) == pytest.approx(want, rel=1e-14) and got.dtype == torch.float64
    half = switch.load_balancing_loss(torch.tensor([[0.5, 0.5]] * 2), torch.tensor([0, 0]))
    assert float(half) == 2 * (1.0 * 0.5 + 0 * 0.5)


def test_switch_parameters_have_the_documented_shapes_and_scales():
    """Protects the layer's parameters: a bias-free router (d → E), expert weights (E, d, f)
    and (E, f, d) drawn with standard deviations d^-1/2 and f^-1/2, and the stored config."""
    torch.manual_seed(0)
    layer = switch.SwitchFFN(16, 64, 8, capacity_factor=1.5)
    assert layer.config == switch.SwitchConfig(16, 64, 8, 1.5)
    assert layer.router.bias is None and layer.router.weight.shape == (8, 16)
    assert layer.w_in.shape == (8, 16, 64) and layer.w_out.shape == (8, 64, 16)
    assert float(layer.w_in.detach().std()) == pytest.approx(16 ** -0.5, rel=0.05)
    assert float(layer.w_out.detach().std()) == pytest.approx(64 ** -0.5, rel=0.05)
    assert abs(float(layer.w_in.detach().mean())) < 0.01
    assert abs(float(layer.w_out.detach().mean())) < 0.01
    assert switch.SwitchFFN(4, 4, 2).config.capacity_factor == 1.0


@pytest.mark.parametrize("kwargs, message", [
    ({"d_model": 0}, "d_model must be a positive int, got 0"),
    ({"d_model": True}, "d_model must be a positive int, got True"),
    ({"d_ff": 2.0}, "d_ff must be a positive int, got 2.0"),
    ({"d_ff": -3}, "d_ff must be a positive int, got -3"),
    ({"n_experts": 0}, "n_experts must be a positive int, got 0"),
    ({"capacity_factor": -0.5}, "capacity_factor must be > 0, got -0.5"),
    ({"capacity_factor": float("nan")}, "capacity_factor must be > 0, got nan"),
])
def test_switch_config_rejects_bad_shapes(kwargs, message):
    """Protects SwitchConfig's checks, with their full messages."""
    args = {"d_model": 4, "d_ff": 8, "n_experts": 2, "capacity_factor": 1.0} | kwargs
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        switch.SwitchConfig(**args)


def test_switch_config_accepts_the_smallest_valid_values():
    """Protects the bounds: widths and expert count 1, and a capacity factor below 1."""
    config = switch.SwitchConfig(1, 1, 1, 0.25)
    assert (config.d_model, config.d_ff, config.n_experts, config.capacity_factor) == (
        1, 1, 1, 0.25)


@pytest.mark.parametrize("x, given", [
    ([[[0.0] * 6]], "()"), (np.zeros((2, 3, 5)), "(2, 3, 5)"), (torch.zeros(3, 6), "(3, 6)"),
    (torch.zeros(2, 3, 5), "(2, 3, 5)")])
def test_switch_forward_rejects_bad_inputs(x, given):
    """Protects the Switch layer's input check, with its full message."""
    with pytest.raises(ValueError, match=re.escape(
            f"x must have shape (b, l, d_model) = (b, l, 6), got {given}") + "$"):
        _switch_layer()(x)


# --- the Perceiver's latents -------------------------------------------------------------------


def perceiver_oracle(latents, wq, wk, wv, wo, x):
    """Z' = Z + softmax(Z W_q (X W_k)ᵀ / √d) X W_v W_o, one batch entry at a time, numpy
    float64 (weights stored as nn.Linear stores them: (out, in))."""
    d = latents.shape[1]
    q = latents @ wq.T
    out, all_w = [], []
    for xb in x:
        s = q @ (xb @ wk.T).T / math.sqrt(d)
        w = np.exp(s - s.max(1, keepdims=True))
        w /= w.sum(1, keepdims=True)
        out.append(latents + (w @ (xb @ wv.T)) @ wo.T)
        all_w.append(w)
    return np.array(out), np.array(all_w)


def _perceiver_weights(layer):
    return [t.detach().double().numpy() for t in (
        layer.latents, layer.W_q.weight, layer.W_k.weight, layer.W_v.weight, layer.W_o.weight)]


def test_perceiver_and_its_loop_match_the_cross_attention_equation():
    """Protects the Perceiver's latents Z' and attention weights (scaled by 1/√d of the
    latents' width, not the input's), and the float64 reference loop, against numpy."""
    torch.manual_seed(1)
    layer = perceiver.PerceiverLatents(3, 4, d_input=7)
    with torch.no_grad():
        layer.latents.mul_(200)                     # scores of order 1: the scale shows
    x = torch.randn(2, 5, 7, generator=_gen(2))
    want, want_w = perceiver_oracle(*_perceiver_weights(layer), x.double().numpy())
    z, w = layer(x, return_weights=True)
    np.testing.assert_allclose(z.detach().numpy(), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(w.detach().numpy(), want_w, rtol=1e-5, atol=1e-6)
    assert want_w.max() - want_w.min() > 0.3                    # far from uniform
    ref = perceiver.cross_attend_ref(layer, x)
    assert ref.dtype == torch.float64
    np.testing.assert_allclose(ref.numpy(), want, rtol=1e-12, atol=1e-12)
    plain = layer(x)
    assert isinstance(plain, torch.Tensor) and torch.equal(plain, z)


def test_perceiver_reference_loop_is_stable_for_large_scores():
    """Protects the loop's max-subtraction: scores in the hundreds would overflow exp()."""
    torch.manual_seed(0)
    layer = perceiver.PerceiverLatents(2, 3)
    with torch.no_grad():
        layer.latents.copy_(torch.tensor([[30.0, -20.0, 10.0], [-5.0, 25.0, 15.0]]))
    x = 120 * torch.randn(1, 4, 3, generator=_gen(0))
    want, w = perceiver_oracle(*_perceiver_weights(layer), x.double().numpy())
    q = layer.latents.detach().double().numpy() @ layer.W_q.weight.double().detach().numpy().T
    assert np.abs(q @ (x[0].double().numpy() @ layer.W_k.weight.double().detach().numpy().T).T
                  ).max() / math.sqrt(3) > 400   # exp(2 · 400) overflows
    np.testing.assert_allclose(perceiver.cross_attend_ref(layer, x).numpy(), want, rtol=1e-12,
                               atol=1e-9)


def test_perceiver_parameters_have_the_documented_shapes():
    """Protects the parameters: n × d latents of standard deviation 0.02, bias-free
    projections d → d (queries, output) and d_input → d (keys, values), d_input = d by
    default."""
    torch.manual_seed(0)
    layer = perceiver.PerceiverLatents(64, 32, d_input=5)
    assert layer.latents.shape == (64, 32) and layer.d_input == 5
    assert float(layer.latents.detach().std()) == pytest.approx(0.02, rel=0.05)
    shapes = {n: (m.weight.shape, m.bias) for n, m in (
        ("q", layer.W_q), ("k", layer.W_k), ("v", layer.W_v), ("o", layer.W_o))}
    assert shapes == {"q": ((32, 32), None), "k": ((32, 5), None), "v": ((32, 5), None),
                      "o": ((32, 32), None)}
    same = perceiver.PerceiverLatents(2, 6)
    assert same.d_input == 6 and same.W_k.weight.shape == same.W_v.weight.shape == (6, 6)


@pytest.mark.parametrize("kwargs, message", [
    ({"n_latents": 0}, "n_latents must be a positive int, got 0"),
    ({"n_latents": True}, "n_latents must be a positive int, got True"),
    ({"n_latents": 2.0}, "n_latents must be a positive int, got 2.0"),
    ({"d_model": -1}, "d_model must be a positive int, got -1"),
    ({"d_model": False}, "d_model must be a positive int, got False"),
])
def test_perceiver_rejects_bad_shapes(kwargs, message):
    """Protects the Perceiver's shape checks, with their full messages."""
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        perceiver.PerceiverLatents(**({"n_latents": 2, "d_model": 4} | kwargs))


@pytest.mark.parametrize("x, given", [
    ([[1.0]], "()"), (torch.zeros(5, 3), "(5, 3)"), (torch.zeros(1, 5, 4), "(1, 5, 4)")])
def test_perceiver_rejects_bad_inputs(x, given):
    """Protects the Perceiver's input check, with its full message."""
    layer = perceiver.PerceiverLatents(1, 4, d_input=3)
    assert perceiver.PerceiverLatents(1, 1).latents.shape == (1, 1)   # the smallest valid
    with pytest.raises(ValueError, match=re.escape(
            f"x must have shape (b, l, d_input) = (b, l, 3), got {given}") + "$"):
        layer(x)


# --- Mixture-of-Depths and the Universal Transformer -------------------------------------------


def mod_oracle(x, scores, fraction, branch):
    """Raposo et al.'s routing in numpy float64: the k = ⌈fraction · l⌉ highest-scoring tokens
    of each sequence (the earlier one on a tie), in order, through branch; y_t = x_t + r_t f_t
    for them and x_t for the rest."""
    b, l, _ = x.shape
    k = math.ceil(fraction * l)
    y, chosen = x.copy(), np.zeros((b, l), dtype=bool)
    for i in range(b):
        top = sorted(sorted(range(l), key=lambda t: (-scores[i, t], t))[:k])
        out = branch(x[i, top])
        for j, t in enumerate(top):
            y[i, t] = x[i, t] + scores[i, t] * out[j]
            chosen[i, t] = True
    return y, chosen


def _mixing(h):  # an order-sensitive branch: each chosen token sees those before it
    return np.cumsum(np.tanh(h) * np.array([1.0, -2.0, 0.5]), axis=-2)


@pytest.mark.parametrize("fraction", [0.25, 0.5, 1.0])
def test_mod_route_matches_the_papers_routing_in_float64(fraction):
    """Protects Mixture-of-Depths: which tokens go through the block (⌈fraction · l⌉, l = 10:
    3, 5 or all), in what order, and y = x + r · f(x_S) on them, x elsewhere; also the
    reference loop."""
    x = torch.randn(2, 10, 3, dtype=torch.float64, generator=_gen(6))
    scores = torch.randn(2, 10, dtype=torch.float64, generator=_gen(7))

    def branch(h):
        return torch.from_numpy(_mixing(h.numpy()))

    want, want_chosen = mod_oracle(x.numpy(), scores.numpy(), fraction, _mixing)
    y, chosen = depth.mod_route(x, scores, fraction, branch)
    assert chosen.dtype == torch.bool and chosen.tolist() == want_chosen.tolist()
    assert chosen.sum(1).tolist() == [math.ceil(fraction * 10)] * 2
    np.testing.assert_allclose(y.numpy(), want, rtol=0, atol=1e-14)
    np.testing.assert_allclose(depth.mod_route_ref(x, scores, fraction, branch).numpy(), want,
                               rtol=0, atol=1e-14)


def test_mod_route_puts_the_router_on_the_gradient_path():
    """Protects the multiplication by r_t: d(Σ y)/d r_t is Σ_c f(x_S)_t,c for a routed token,
    0 for a skipped one."""
    x = torch.randn(1, 6, 3, dtype=torch.float64, generator=_gen(8))
    scores = torch.randn(1, 6, dtype=torch.float64, generator=_gen(9), requires_grad=True)
    y, chosen = depth.mod_route(x, scores, 0.5, lambda h: 2 * h)
    y.sum().backward()
    want = np.where(chosen[0].numpy(), 2 * x[0].numpy().sum(-1), 0.0)
    np.testing.assert_allclose(scores.grad[0].numpy(), want, atol=1e-14)


def test_mod_route_reference_breaks_ties_towards_the_earlier_token():
    """Protects the reference loop's tie rule (equal scores: the earlier token goes first) and
    its order (the chosen tokens reach the branch in sequence order), by hand."""
    x = torch.arange(12, dtype=torch.float64).reshape(1, 4, 3)
    scores = torch.tensor([[1.0, 2.0, 1.0, 1.0]], dtype=torch.float64)
    seen = []

    def branch(h):
        seen.append(h[0, :, 0].tolist())
        return torch.ones_like(h)

    y = depth.mod_route_ref(x, scores, 0.5, branch)              # k = 2: tokens 0 and 1
    assert seen == [[0.0, 3.0]]
    assert y[0, :, 0].tolist() == [1.0, 5.0, 6.0, 9.0]
    shapes = []
    depth.mod_route_ref(torch.zeros(3, 4, 2), torch.ones(3, 4), 0.75,
                        lambda h: shapes.append(tuple(h.shape)) or h)
    assert shapes == [(1, 3, 2)] * 3                              # one sequence at a time


@pytest.mark.parametrize("args, message", [
    (([[[0.0]]], torch.zeros(1, 1), 0.5), "x must have shape (b, l, d), got ()"),
    ((torch.zeros(2, 3), torch.zeros(2, 3), 0.5), "x must have shape (b, l, d), got (2, 3)"),
    ((torch.zeros(2, 3, 4), [[0.0] * 3] * 2, 0.5),
     "scores must have shape (b, l) = (2, 3), got ()"),
    ((torch.zeros(2, 3, 4), torch.zeros(3, 2), 0.5),
     "scores must have shape (b, l) = (2, 3), got (3, 2)"),
    ((torch.zeros(2, 3, 4), torch.zeros(2, 3), 0.0), "fraction must be in (0, 1], got 0.0"),
    ((torch.zeros(2, 3, 4), torch.zeros(2, 3), -0.5), "fraction must be in (0, 1], got -0.5"),
    ((torch.zeros(2, 3, 4), torch.zeros(2, 3), 1.5), "fraction must be in (0, 1], got 1.5"),
])
def test_mod_route_rejects_bad_inputs(args, message):
    """Protects Mixture-of-Depths' input checks, with their full messages."""
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        depth.mod_route(*args, lambda h: h)


class _Affine(torch.nn.Module):
    def __init__(self, as_tuple):
        super().__init__()
        self.as_tuple = as_tuple

    def forward(self, h):
        out = 0.5 * h.flip(-1) + 1.0
        return (out, "cache") if self.as_tuple else out


@pytest.mark.parametrize("as_tuple", [False, True])
def test_universal_transformer_adds_each_steps_embedding_before_the_block(as_tuple):
    """Protects hˢ = block(hˢ⁻¹ + e_s) for s = 1 … n_steps, each step with its own embedding,
    for a block returning a tensor or a tuple; the embeddings start at zero."""
    ut = depth.UniversalTransformer(_Affine(as_tuple), 3, 2)
    assert ut.step_embedding.shape == (2, 3) and not ut.step_embedding.any()
    assert ut.n_steps == 2
    with torch.no_grad():
        ut.step_embedding.copy_(torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.0, 4.0]]))
    x = torch.tensor([[[2.0, 0.0, -2.0]]])
    h1 = 0.5 * np.array([1.0, 2.0, 3.0])[::-1] + 0.5 * np.array([2.0, 0.0, -2.0])[::-1] + 1.0
    h2 = 0.5 * (h1 + np.array([-1.0, 0.0, 4.0]))[::-1] + 1.0
    y = ut(x)
    assert y.shape == x.shape
    np.testing.assert_allclose(y[0, 0].detach().numpy(), h2, rtol=0, atol=1e-6)


@pytest.mark.parametrize("n_steps, message", [
    (True, "n_steps must be a positive int, got True"),
    (2.0, "n_steps must be a positive int, got 2.0"),
    (-1, "n_steps must be a positive int, got -1"),
])
def test_universal_transformer_rejects_bad_step_counts(n_steps, message):
    """Protects the step-count check, with its full message; one step is valid."""
    assert depth.UniversalTransformer(_Affine(False), 3, 1).n_steps == 1
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        depth.UniversalTransformer(_Affine(False), 3, n_steps)


# --- the atlas: memory held and FLOPs per token ------------------------------------------------


def atlas_oracle(t, d, L, h, n, window, n_mem, n_cmem, rate, slots, datastore, latents):
    """Each architecture's numbers held after t tokens and forward FLOPs for the next one,
    counted part by part from the book's descriptions (a multiply-add = 2 FLOPs)."""
    dense = 2 * (3 * d * d + d * d + 2 * d * 4 * d)        # Q, K, V, output, d → 4d → d MLP
    e = 2 * d                                              # Mamba's expanded width
    mamba = 2 * d * 2 * e + 2 * e * d + 4 * e * n + 6 * e * n  # in/out projections, Δ B C, scan

    def attend(ctx):                                       # q·k and the weighted read of v
        return dense + 2 * d * ctx + 2 * d * ctx

    ctx = min(t, n_mem + n_cmem)
    rows = [
        ("LSTM", 0, 2, L * (d + d), L * 4 * 2 * (d + d) * d, "lossy: 2dL numbers"),
        ("S4D / Mamba", 0, 5, L * e * n, L * mamba, "lossy, selective"),
        ("Linear attention", 0, 6, L * d * d // h,                # h heads of (d/h)²
         L * (dense + 4 * d * d // h), "lossy: d²/h per layer"),   # whole FLOPs per layer
        ("Transformer (KV cache)", 1, 6, L * 2 * d * t, L * attend(t), "exact, every token"),
        ("Sliding window", 1, 6, L * 2 * d * min(t, window), L * attend(min(t, window)),
         f"exact, last {window} only"),
        ("Compressive Transformer", 2, 9, L * 2 * d * ctx, L * attend(ctx),
         f"exact {n_mem}, lossy {rate * n_cmem} more"),
        ("NTM", 2, 9, slots * d / 4 + 2 * d, 16 * d * d + 8 * slots * d / 4,
         f"exact, {slots} slots"),
        ("kNN-LM (Transformer + datastore)", 2, 9, L * 2 * d * t + datastore * d,
         L * attend(t) + 3 * datastore * d, "exact lookup of training text"),
        ("Perceiver latents", 2, 9, L * latents * d, L * (dense + 4 * latents * d),
         f"lossy: {latents} latents"),
    ]
    return [{"name": nm, "family": atlas.FAMILIES[f], "chapter": ch, "memory": int(mem),
             "flops": int(fl), "recall": rec} for nm, f, ch, mem, fl, rec in rows]


def test_atlas_at_the_books_scale_counts_each_part():
    """Protects every row of the book's atlas (its default shapes: t = 4096, d = 128, 4
    layers, 4 heads, N = 16, ...): name, family, chapter, memory, FLOPs and recall."""
    want = atlas_oracle(4096, 128, 4, 4, 16, 256, 512, 512, 4, 128, 1_003_840, 64)
    rows = atlas.atlas()
    assert rows == want
    assert all(type(r["memory"]) is int and type(r["flops"]) is int for r in rows)
    assert atlas.FAMILIES == ("running state", "keep everything", "store elsewhere")


@pytest.mark.parametrize("t", [1, 300, 5000])
def test_atlas_follows_every_shape(t):
    """Protects the counts' dependence on each shape, with values chosen so that no two
    shapes are equal and the per-head and per-slot divisions leave remainders (t = 300 sits
    between the window and the compressive context, 5000 past both)."""
    shapes = dict(d=10, n_layers=5, n_heads=3, d_state=7, window=100, n_memory=600,
                  n_cmemory=900, rate=3, n_slots=11, n_datastore=1234, n_latents=13)
    want = atlas_oracle(t, 10, 5, 3, 7, 100, 600, 900, 3, 11, 1234, 13)
    assert atlas.atlas(t, **shapes) == want


@pytest.mark.parametrize("t", [0, -4, 2.0, True, "8"])
def test_atlas_rejects_a_bad_token_count(t):
    """Protects the check of t, with its full message."""
    with pytest.raises(ValueError, match=f"^{re.escape(f't must be an int >= 1, got {t!r}')}$"):
        atlas.atlas(t)


def test_plot_atlas_draws_each_family_and_labels_each_point():
    """Protects the atlas figure: one log-log scatter per family in its colour, every point
    labelled with its name and recall (set apart, with a line, where a neighbour's would
    cover it), the axis labels (with t when given), the title and the legend."""
    rows = atlas.atlas(512)
    ax = Figure().subplots()
    assert atlas.plot_atlas(ax, rows, t=4096) is ax
    colors = [PALETTE["state"], PALETTE["attention"], PALETTE["accent"]]
    assert [c.get_label() for c in ax.collections] == list(atlas.FAMILIES)
    for family, color, coll in zip(atlas.FAMILIES, colors, ax.collections, strict=True):
        pts = [(r["memory"], r["flops"]) for r in rows if r["family"] == family]
        assert coll.get_offsets().tolist() == [list(p) for p in pts]
        assert tuple(coll.get_facecolor()[0]) == to_rgba(color)
        assert coll.get_sizes().tolist() == [40] and coll.get_zorder() == 3
    assert len(ax.texts) == len(rows)
    for r, ann in zip(rows, ax.texts, strict=True):
        assert ann.get_text() == f"{r['name']}\n({r['recall']})"
        assert ann.xy == (r["memory"], r["flops"]) and ann.get_fontsize() == 7
        place = {"Linear attention": (-5, 3, "right", "bottom"),
                 "Perceiver latents": (60, -6, "left", "top")}.get(r["name"],
                                                                   (5, 3, "left", "bottom"))
        assert (*ann.xyann, ann.get_ha(), ann.get_va()) == place, r["name"]
        assert ann.anncoords == "offset points"
        assert (ann.arrow_patch is not None) == (r["name"] == "Perceiver latents")
        if ann.arrow_patch is not None:
            assert ann.arrowprops == {"arrowstyle": "-", "lw": 0.6}
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    assert ax.get_xlabel() == "numbers held about the past after t = 4,096 tokens"
    assert ax.get_ylabel() == "forward FLOPs per token"
    assert ax.get_title() == "Three ways to carry the past"
    legend = ax.get_legend()
    assert [x.get_text() for x in legend.get_texts()] == list(atlas.FAMILIES)
    assert legend._loc == 4 and legend.get_texts()[0].get_fontsize() == 8     # lower right
    bare = Figure().subplots()
    atlas.plot_atlas(bare, rows)
    assert bare.get_xlabel() == "numbers held about the past"


def test_forward_flops_counts_a_matrix_product_without_gradients(capsys):
    """Protects forward_flops: PyTorch's count (2 · m · k · n for an (m, k) @ (k, n) product),
    run with gradients off and without printing the counter's table."""
    a, b = torch.randn(3, 4, requires_grad=True), torch.randn(4, 5)
    seen = []

    def fn():
        seen.append(torch.is_grad_enabled())
        return (a @ b) @ torch.ones(5, 2)

    assert atlas.forward_flops(fn) == 2 * 3 * 4 * 5 + 2 * 3 * 5 * 2
    assert seen == [False]
    assert capsys.readouterr() == ("", "")                     # counts, prints no table


def test_measured_costs_defaults_are_the_books_setting(monkeypatch):
    """Protects measured_costs' defaults (d = 128, l = 256, 8 experts, 12.5 % routed, 4 steps,
    32 latents, capacity factor 1.25, seed 0), their labels and parameter counts; FLOPs are
    left out (counted in test_memory_aug_conditional.py at a small size)."""
    monkeypatch.setattr(atlas, "forward_flops", lambda fn: 0)
    rows = atlas.measured_costs()
    explicit = atlas.measured_costs(d=128, l=256, n_experts=8, fraction=0.125, n_steps=4,
                                    n_latents=32, capacity_factor=1.25, seed=0)
    assert rows == explicit
    assert [r["layer"] for r in rows] == [
        "dense MLP (4d)", "Switch, 8 experts", "Transformer block",
        "Mixture-of-Depths block, 12.5% routed", "4 distinct blocks",
        "Universal Transformer, 1 block × 4", "self-attention over l = 256",
        "Perceiver, 32 latents"]
    d = 128
    assert [r["parameters"] for r in rows][:2] == [8 * d * d, 8 * (8 * d * d) + 8 * d]
    assert rows[-1]["parameters"] == 32 * d + 4 * d * d
    assert [r["dropped"] is None for r in rows] == [True, False] + [True] * 6
    other = atlas.measured_costs(seed=1)[1]["dropped"]
    roomier = atlas.measured_costs(capacity_factor=1.5)[1]["dropped"]
    assert rows[1]["dropped"] != other and roomier < rows[1]["dropped"]


def test_measured_costs_of_attention_and_the_perceiver_follow_the_shapes():
    """Protects the rows the other cost test leaves out, counted by hand (d = 16, l = 24, 8
    latents): self-attention (Q, K, V, output projections; l scores and reads per token), the
    Perceiver (its latents' queries and output once per sequence, keys and values per token,
    n scores and reads per token) and the Mixture-of-Depths block's parameters (a d → 1
    router with a bias)."""
    d, l, n = 16, 24, 8
    rows = {r["layer"].split(",")[0]: r for r in atlas.measured_costs(d=d, l=l, n_latents=n)}
    attn = rows[f"self-attention over l = {l}"]
    assert attn["flops_per_token"] == 2 * 4 * d * d + 4 * d * l
    assert attn["parameters"] == 4 * d * d
    per = rows["Perceiver"]
    assert per["flops_per_token"] == pytest.approx(
        (2 * n * d * d * 2 + 2 * l * d * d * 2 + 2 * n * l * d * 2) / l)
    assert per["parameters"] == n * d + 4 * d * d
    assert rows["Mixture-of-Depths block"]["parameters"] == (rows["Transformer block"][
        "parameters"] + d + 1)
    k = math.ceil(0.125 * l)                      # the default fraction: 3 of the 24 tokens
    assert rows["Mixture-of-Depths block"]["flops_per_token"] == pytest.approx(
        (2 * d * l + 24 * d * d * k + 4 * d * k * k) / l)   # router on all, block on k


def test_measured_costs_switch_drops_are_the_routers_at_that_capacity(monkeypatch):
    """Protects the 'dropped' column: the fraction of the l tokens that overflow their expert,
    as the layer's own routing of that input says (recounted here from its choices)."""
    monkeypatch.setattr(atlas, "forward_flops", lambda fn: 0)
    made = []
    real = switch.SwitchFFN

    def record(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(switch, "SwitchFFN", record)
    row = atlas.measured_costs(d=8, l=40, n_experts=4, capacity_factor=0.75, seed=3)[1]
    torch.manual_seed(3)
    x = torch.randn(1, 40, 8)
    expert = made[0].route(x)["expert"]
    cap = math.ceil(0.75 * 40 / 4)
    over = sum(max(0, int((expert == e).sum()) - cap) for e in range(4))
    assert over > 0 and row["dropped"] == pytest.approx(over / 40, abs=1e-7)


# --- the addressing explorer -------------------------------------------------------------------


def test_demo_memory_has_two_equal_slots_and_its_own_generator():
    """Protects the demo memory: (1, 12, 6) float64 by default, slots 3 and 8 equal and no
    others, drawn from its seed (not the global generator), different for another seed."""
    torch.manual_seed(5)
    m = explore.demo_memory()
    torch.manual_seed(6)
    assert torch.equal(m, explore.demo_memory(12, 6, 0))
    assert m.shape == (1, 12, 6) and m.dtype == torch.float64
    equal = [(i, j) for i in range(12) for j in range(i + 1, 12) if torch.equal(m[0, i], m[0, j])]
    assert equal == [(3, 8)]
    assert not torch.equal(explore.demo_memory(seed=1), m)
    assert explore.demo_memory(10, 3, seed=2).shape == (1, 10, 3)


@pytest.mark.parametrize("shift, s", [(-0.3, [0.3, 0.7, 0.0]), (0.0, [0.0, 1.0, 0.0]),
                                      (0.8, [0.0, 0.2, 0.8]), (-1.0, [1.0, 0.0, 0.0])])
def test_addressing_stages_are_each_step_of_the_ntm(shift, s):
    """Protects each stage of the explorer against the NTM's own steps, with the shift
    slider's value turned into the (back, stay, forward) weights by hand."""
    memory = explore.demo_memory()
    key = memory[:, 3] + 0.1
    prev = torch.softmax(torch.randn(1, 12, dtype=torch.float64, generator=_gen(2)), -1)
    stages = explore.addressing_stages(memory, key, prev, beta=3.0, g=0.4, shift=shift,
                                       gamma=2.0)
    assert list(stages) == ["content", "gated", "shifted", "sharpened"]
    f64 = torch.float64
    content = ntm.content_addressing(memory, key, torch.tensor([3.0], dtype=f64))
    gated = ntm.gated_interpolation(content, prev, torch.tensor([0.4], dtype=f64))
    shifted = ntm.circular_shift(gated, torch.tensor([s], dtype=f64))
    sharp = ntm.sharpen(shifted, torch.tensor([2.0], dtype=f64))
    for name, want in zip(stages, (content, gated, shifted, sharp), strict=True):
        assert stages[name].shape == (12,)
        torch.testing.assert_close(stages[name], want[0], rtol=1e-12, atol=1e-14)


def test_plot_addressing_draws_one_bar_chart_per_stage():
    """Protects the explorer's panels: the weights as bars over the slots, the titles, the
    shared 0-1 range and the labels."""
    memory = explore.demo_memory()
    prev = torch.zeros(1, 12, dtype=torch.float64)
    prev[0, 0] = 1.0
    stages = explore.addressing_stages(memory, memory[:, 3], prev, 5.0, 0.5, 0.5, 2.0)
    axes = Figure().subplots(1, 4)
    assert explore.plot_addressing(axes, stages) is axes
    titles = ["1. content: softmax(β cos)", "2. gate with w_prev", "3. shift", "4. sharpen (γ)"]
    for ax, title, w in zip(axes, titles, stages.values(), strict=True):
        bars = ax.patches
        assert [p.get_height() for p in bars] == pytest.approx(w.tolist(), abs=1e-12)
        assert [p.get_x() + p.get_width() / 2 for p in bars] == pytest.approx(range(12))
        assert tuple(bars[0].get_facecolor()) == to_rgba(PALETTE["state"])
        assert ax.get_title() == title and ax.get_xlabel() == "slot i"
        assert ax.get_ylim() == (0, 1)
    assert [ax.get_ylabel() for ax in axes] == ["weighting w(i)", "", "", ""]
    with pytest.raises(ValueError, match=r"^zip\(\) argument 2 is longer than argument 1$"):
        explore.plot_addressing(Figure().subplots(1, 3), stages)    # one panel per stage


def test_addressing_explorer_sliders_redraw_the_four_stages(monkeypatch):
    """Protects the explorer's controls (β 0-50 by 0.5 at 5, gate 0-1 by 0.05 at 1, shift
    −1 to 1 by 0.1 at 0, γ 1-20 by 0.5 at 1) and its redraw: four panels on one 10 × 2.6
    figure sharing y, for a key equal to slot 3 and a previous focus on slot 0 (ipywidgets
    swallows errors in the update, so the drawn figure is what is checked)."""
    shown = []
    monkeypatch.setattr(plt, "show", lambda: shown.append(plt.gcf()))
    explorer = explore.addressing_explorer(seed=1)
    beta, g, shift, gamma = explorer.children[:4]
    assert [(w.value, w.min, w.max, w.step, w.description) for w in (beta, g, shift, gamma)] == [
        (5.0, 0.0, 50.0, 0.5, "β"), (1.0, 0.0, 1.0, 0.05, "gate g"),
        (0.0, -1.0, 1.0, 0.1, "shift"), (1.0, 1.0, 20.0, 0.5, "γ")]
    assert len(shown) == 1
    memory = explore.demo_memory(seed=1)
    prev = torch.zeros(1, 12, dtype=torch.float64)
    prev[0, 0] = 1.0
    for widget, value in ((g, 0.25), (shift, -0.5), (gamma, 3.0), (beta, 2.0)):
        widget.value = value
    fig = shown[-1]
    assert tuple(fig.get_size_inches()) == pytest.approx((10.0, 2.6))
    axes = fig.get_axes()
    want = explore.addressing_stages(memory, memory[:, 3], prev, 2.0, 0.25, -0.5, 3.0)
    assert len(axes) == 4 and axes[1].get_shared_y_axes().joined(axes[0], axes[3])
    assert axes[0].get_subplotspec().get_geometry()[:2] == (1, 4)   # side by side
    for ax, w in zip(axes, want.values(), strict=True):
        assert [p.get_height() for p in ax.patches] == pytest.approx(w.tolist(), abs=1e-12)
    assert len(shown) == 5
    default = explore.addressing_explorer()
    assert default.children[0].value == 5.0
    first = shown[-1].get_axes()[0]
    want0 = explore.addressing_stages(explore.demo_memory(), explore.demo_memory()[:, 3],
                                      torch.eye(12, dtype=torch.float64)[:1], 5.0, 1.0, 0.0, 1.0)
    assert [p.get_height() for p in first.patches] == pytest.approx(want0["content"].tolist(),
                                                                     abs=1e-12)
    plt.close("all")
