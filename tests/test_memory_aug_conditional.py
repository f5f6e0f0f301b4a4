"""sseq.memory_aug: the Switch layer against a per-token loop, Mixture-of-Depths routing against
a per-sequence loop, the Universal Transformer's shared block, and the Perceiver's latents
against a float64 loop."""

from __future__ import annotations

import pytest
import torch

from sseq.memory_aug import depth, perceiver, switch


def _switch(cf=1.0, seed=0):
    torch.manual_seed(seed)
    return switch.SwitchFFN(8, 16, 4, capacity_factor=cf).double()


@pytest.mark.parametrize("cf", [0.5, 1.0, 4.0])
def test_switch_matches_the_per_token_loop(cf):
    layer = _switch(cf)
    x = torch.randn(3, 10, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y, r = layer(x)
    assert torch.allclose(y, switch.switch_ref(layer, x), atol=1e-12)
    cap = switch.capacity(30, 4, cf)
    loads = torch.bincount(r["expert"][r["kept"]], minlength=4)
    assert (loads <= cap).all() and int((~r["kept"]).sum()) == sum(
        max(0, int(n) - cap) for n in torch.bincount(r["expert"], minlength=4))
    assert (y.flatten(0, 1)[~r["kept"]] == 0).all()


def test_switch_gradients_match_the_loop():
    layer = _switch(0.75)
    x = torch.randn(2, 6, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    grads = []
    for fn in (lambda: layer(x)[0], lambda: switch.switch_ref(layer, x)):
        layer.zero_grad()
        (fn() ** 2).sum().backward()
        grads.append([p.grad.clone() for p in layer.parameters()])
    for a, b in zip(*grads, strict=True):
        assert torch.allclose(a, b, atol=1e-10)


def test_load_balancing_loss_is_one_when_uniform_and_E_when_collapsed():
    uniform = torch.full((8, 4), 0.25)
    assert float(switch.load_balancing_loss(uniform, torch.arange(8) % 4)) == pytest.approx(1.0)
    collapsed = torch.tensor([[1.0, 0, 0, 0]]).repeat(8, 1)
    assert float(switch.load_balancing_loss(collapsed, torch.zeros(8, dtype=torch.long))) == 4.0


def test_switch_bad_input():
    with pytest.raises(ValueError, match="capacity_factor must be > 0, got 0"):
        switch.SwitchFFN(8, 16, 4, capacity_factor=0)
    with pytest.raises(ValueError, match=r"x must have shape \(b, l, d_model\) = \(b, l, 8\)"):
        _switch()(torch.zeros(2, 3, 5, dtype=torch.float64))


def test_mod_route_matches_the_loop_and_processes_the_top_fraction():
    g = torch.Generator().manual_seed(0)
    x, scores = torch.randn(3, 10, 4, generator=g), torch.randn(3, 10, generator=g)
    lin = torch.nn.Linear(4, 4)

    def branch(h):  # mixes the chosen tokens, so the order they are given in matters
        return torch.tanh(lin(h)).cumsum(1)

    y, chosen = depth.mod_route(x, scores, 0.3, branch)
    assert torch.allclose(y, depth.mod_route_ref(x, scores, 0.3, branch), atol=1e-6)
    assert chosen.sum(1).tolist() == [3, 3, 3]
    assert torch.equal(y[~chosen], x[~chosen])
    for i in range(3):
        assert set(scores[i].topk(3).indices.tolist()) == set(chosen[i].nonzero()[:, 0].tolist())
    with pytest.raises(ValueError, match=r"scores must have shape \(b, l\) = \(3, 10\)"):
        depth.mod_route(x, scores[:, :5], 0.3, branch)
    with pytest.raises(ValueError, match="fraction must be in \\(0, 1\\], got 0"):
        depth.mod_route(x, scores, 0, branch)


def test_universal_transformer_shares_its_parameters_across_steps():
    from sseq.lm.gpt import Block, GPTConfig

    torch.manual_seed(0)
    block = Block(GPTConfig(10, 16, 1, 2, 16))
    counts = [sum(p.numel() for p in depth.UniversalTransformer(block, 16, s).parameters())
              for s in (1, 4)]
    assert counts[1] - counts[0] == 3 * 16                          # only step embeddings
    ut = depth.UniversalTransformer(block, 16, 3)
    x = torch.randn(2, 5, 16)
    want = x
    for s in range(3):
        want = block(want + ut.step_embedding[s])[0]
    assert torch.allclose(ut(x), want)
    with pytest.raises(ValueError, match="n_steps must be a positive int, got 0"):
        depth.UniversalTransformer(block, 16, 0)


def test_perceiver_matches_the_loop_and_its_memory_does_not_grow():
    torch.manual_seed(0)
    layer = perceiver.PerceiverLatents(3, 8, d_input=5)
    x = torch.randn(2, 7, 5)
    z, w = layer(x, return_weights=True)
    assert torch.allclose(z.double(), perceiver.cross_attend_ref(layer, x), atol=1e-5)
    assert w.shape == (2, 3, 7) and torch.allclose(w.sum(-1), torch.ones(2, 3))
    assert layer(torch.randn(2, 200, 5)).shape == z.shape == (2, 3, 8)
    with pytest.raises(ValueError, match=r"x must have shape \(b, l, d_input\) = \(b, l, 5\)"):
        layer(torch.randn(2, 7, 8))


# --- the map and the measured costs ------------------------------------------------------------


def test_atlas_memory_grows_with_t_only_for_what_keeps_everything():
    from sseq.memory_aug import atlas

    short, long = ({r["name"]: r for r in atlas.atlas(t)} for t in (64, 4096))
    for name in ("LSTM", "S4D / Mamba", "Linear attention", "NTM", "Perceiver latents"):
        assert short[name]["memory"] == long[name]["memory"], name
    kv = long["Transformer (KV cache)"]
    assert kv["memory"] == 2 * 4 * 128 * 4096 == 64 * short["Transformer (KV cache)"]["memory"]
    assert long["Sliding window"]["memory"] == 2 * 4 * 128 * 256
    with pytest.raises(ValueError, match="t must be an int >= 1, got 0"):
        atlas.atlas(0)


def test_measured_costs_follow_the_shapes():
    from sseq.memory_aug import atlas

    d, l = 32, 64
    rows = {r["layer"].split(",")[0]: r for r in atlas.measured_costs(d=d, l=l, n_experts=4,
                                                                       fraction=0.25)}
    dense, sw = rows["dense MLP (4d)"], rows["Switch"]
    assert dense["flops_per_token"] == 2 * 2 * d * 4 * d
    assert sw["parameters"] == 4 * dense["parameters"] + 4 * d
    assert sw["flops_per_token"] <= dense["flops_per_token"] + 2 * d * 4  # + the router
    assert 0 <= sw["dropped"] < 1 and dense["dropped"] is None
    roomy = {r["layer"].split(",")[0]: r for r in atlas.measured_costs(
        d=d, l=l, n_experts=4, fraction=0.25, capacity_factor=4.0)}["Switch"]
    assert roomy["dropped"] == 0  # every token fits: the full expert cost plus the router
    assert roomy["flops_per_token"] == dense["flops_per_token"] + 2 * d * 4
    block = rows["Transformer block"]["flops_per_token"]
    assert block == 24 * d * d + 4 * d * l                     # projections, MLP, all l² pairs
    assert rows["4 distinct blocks"]["flops_per_token"] == 4 * block
    assert rows["Universal Transformer"]["flops_per_token"] == 4 * block
    assert rows["Universal Transformer"]["parameters"] == (rows["Transformer block"]["parameters"]
                                                           + 4 * d)   # + the step embeddings
    mod = rows["Mixture-of-Depths block"]["flops_per_token"]
    assert mod < 0.3 * block                                   # a quarter of the tokens
