"""The Mamba language model's configuration, its loading of state-spaces/mamba configurations,
its refusals (messages checked in full) and its forward pass against a float64 composition
written out here."""

from __future__ import annotations

import re

import pytest
import torch

from sseq.lm import MambaLM, MambaLMConfig
from sseq.lm.mamba_lm import MixerModel
from sseq.mamba import MambaState

V = 11


def _ids(b, l, seed=0):
    return torch.randint(V, (b, l), generator=torch.Generator().manual_seed(seed))


def _norms(model):
    return [layer.norm for layer in model.backbone.layers] + [model.backbone.norm_f]


# --- MambaLMConfig ----------------------------------------------------------------------------


def test_config_refuses_anything_but_a_positive_int_naming_the_field_and_the_value():
    """Each integer field refuses 0, a bool, a float and a string, with its name and value."""
    good = dict(vocab_size=V, d_model=8, n_layers=1, d_state=4, d_conv=2, expand=2,
                pad_vocab_size_multiple=1)
    for name in good:
        for bad in (0, -3, True, 2.0, "8"):
            with pytest.raises(ValueError, match=rf"^{name} must be a positive int, got "
                                                 rf"{re.escape(repr(bad))}$"):
                MambaLMConfig(**{**good, name: bad})
    assert MambaLMConfig(**good).d_conv == 2  # the good values pass


@pytest.mark.parametrize(("vocab", "multiple", "rows"),
                         [(50277, 8, 50280), (50280, 8, 50280), (11, 1, 11), (11, 4, 12),
                          (13, 13, 13), (14, 13, 26)])
def test_padded_vocab_size_rounds_up_to_the_multiple(vocab, multiple, rows):
    """The reference's rule: v + (m − v mod m) when m does not divide v, else v."""
    config = MambaLMConfig(vocab, 8, 1, pad_vocab_size_multiple=multiple)
    assert config.padded_vocab_size == rows


# --- the model, against a float64 composition ---------------------------------------------------


def _rms_norm(x, weight, eps):
    return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def test_forward_is_embedding_residual_blocks_rmsnorm_and_the_tied_head():
    """Logits = RMSNorm_f(h_L) E^T over the first v rows, h_i = h_{i−1} + mixer_i(RMSNorm_i(h)),
    in float64, with every norm using norm_epsilon (large here, so that it shows) and the
    blocks' widths set by d_state, d_conv and expand."""
    torch.manual_seed(0)
    model = MambaLM(V, 8, 2, d_state=3, d_conv=2, expand=3, pad_vocab_size_multiple=4,
                    norm_epsilon=0.5, backend="reference").double()
    with torch.no_grad():
        for norm in _norms(model):
            norm.weight.uniform_(0.5, 1.5)
    mixer = model.backbone.layers[0].mixer
    assert (mixer.d_inner, mixer.d_state, mixer.conv1d.kernel_size) == (24, 3, (2,))
    assert model.backbone.embedding.weight.shape == (12, 8)
    idx = _ids(2, 7)
    E = model.backbone.embedding.weight
    h = E[idx]
    for layer in model.backbone.layers:
        h = h + layer.mixer(_rms_norm(h, layer.norm.weight, 0.5))
    expected = _rms_norm(h, model.backbone.norm_f.weight, 0.5) @ E[:V].T
    got = model(idx)
    assert got.shape == (2, 7, V)
    # the norms compute in float32 (as the reference's RMSNorm does): logits of size ~1e-2
    # agree to float32 rounding
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-8)
    # the ε matters at this scale: the default one gives other logits
    assert not torch.allclose(_rms_norm(h, 1.0, 1e-5), _rms_norm(h, 1.0, 0.5), atol=1e-3)


def test_mixer_model_on_its_own_uses_the_auto_backend_and_the_configs_epsilon():
    """MixerModel(config) without a backend picks "auto"; its norms take norm_epsilon."""
    backbone = MixerModel(MambaLMConfig(V, 8, 2, norm_epsilon=0.125))
    assert [layer.mixer.backend for layer in backbone.layers] == ["auto", "auto"]
    assert [layer.norm.eps for layer in backbone.layers] + [backbone.norm_f.eps] == [0.125] * 3


def test_the_head_has_no_bias_and_extra_repr_shows_the_config():
    model = MambaLM(V, 8, 1, pad_vocab_size_multiple=4, norm_epsilon=0.001)
    assert model.lm_head.bias is None
    assert model.extra_repr() == ("vocab_size=11, d_model=8, n_layers=1, d_state=16, d_conv=4, "
                                  "expand=2, pad_vocab_size_multiple=4, norm_epsilon=0.001")
    assert repr(model).startswith(f"MambaLM(\n  {model.extra_repr()}\n")


# --- from_mamba_ssm_config ---------------------------------------------------------------------


def test_from_mamba_ssm_config_gives_missing_keys_the_reference_defaults():
    """A config.json that leaves keys out means MambaConfig's defaults (state-spaces/mamba,
    config_mamba.py): RMSNorm, pad_vocab_size_multiple 8, a tied head, Mamba-1 blocks with
    d_state 16, d_conv 4, expand 2, norms with ε = 1e-5."""
    model = MambaLM.from_mamba_ssm_config({"d_model": 8, "n_layer": 2, "vocab_size": 13})
    assert model.backbone.embedding.weight.shape == (16, 8)  # 13 rounded up to a multiple of 8
    assert model.lm_head.weight is model.backbone.embedding.weight
    mixer = model.backbone.layers[1].mixer
    assert (mixer.d_inner, mixer.d_state, mixer.conv1d.kernel_size) == (16, 16, (4,))
    assert [norm.eps for norm in _norms(model)] == [1e-5] * 3
    assert mixer.backend == "auto"
    same = MambaLM.from_mamba_ssm_config({"d_model": 8, "n_layer": 1, "vocab_size": 13,
                                          "ssm_cfg": None, "attn_layer_idx": [],
                                          "d_intermediate": 0, "tie_embeddings": True})
    assert same.backbone.layers[0].mixer.d_state == 16


def test_from_mamba_ssm_config_reads_every_key_it_takes():
    config = {"d_model": 8, "n_layer": 3, "vocab_size": 13, "pad_vocab_size_multiple": 5,
              "norm_epsilon": 0.25, "rms_norm": True, "residual_in_fp32": True,
              "fused_add_norm": True, "tie_embeddings": True, "d_intermediate": 0,
              "attn_layer_idx": [], "ssm_cfg": {"layer": "Mamba1", "d_state": 3, "d_conv": 2,
                                                "expand": 3}}
    model = MambaLM.from_mamba_ssm_config(config, backend="reference")
    assert model.config == MambaLMConfig(13, 8, 3, 3, 2, 3, 5, 0.25)
    assert model.backbone.embedding.weight.shape == (15, 8)
    assert len(model.backbone.layers) == 3
    assert [norm.eps for norm in _norms(model)] == [0.25] * 4
    assert {layer.mixer.backend for layer in model.backbone.layers} == {"reference"}
    assert config["ssm_cfg"]["layer"] == "Mamba1"  # the caller's dict is left as it was


def test_from_mamba_ssm_config_refuses_other_models_in_full():
    """Every configuration this model would build wrongly is refused, naming the key and value."""
    base = {"d_model": 8, "n_layer": 1, "vocab_size": V}
    cases = [
        ({"d_model": 8, "vocab_size": V},
         "config must give vocab_size, d_model and n_layer, missing ['n_layer']"),
        ({"n_layer": 1},
         "config must give vocab_size, d_model and n_layer, missing ['vocab_size', 'd_model']"),
        ({**base, "rms_norm": False},
         "config must have rms_norm = true (only RMSNorm models are built), got False"),
        ({**base, "tie_embeddings": False},
         "config must have tie_embeddings = true (the head here is the embedding), got False"),
        ({**base, "d_intermediate": 64},
         "config must have d_intermediate = 0 (only Mamba blocks are built), got 64"),
        ({**base, "attn_layer_idx": [1, 3]},
         "config must have attn_layer_idx = [] (only Mamba blocks are built), got [1, 3]"),
        ({**base, "ssm_cfg": {"layer": "Mamba2"}},
         "only Mamba-1 models are built: ssm_cfg must have layer = 'Mamba1', got 'Mamba2'"),
        ({**base, "ssm_cfg": {"dt_rank": 4, "d_state": 8, "bias": False}},
         "ssm_cfg has keys this model does not take: ['bias', 'dt_rank']"),
    ]
    for config, message in cases:
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            MambaLM.from_mamba_ssm_config(config)


# --- token and state checks -------------------------------------------------------------------


def test_token_ids_are_refused_unless_integer_tensors_of_the_right_rank():
    model = MambaLM(V, 8, 1, backend="reference")
    prefix = "token ids must be an integer tensor of shape "
    for call in (model, model.prefill):
        for bad, shown in ((torch.zeros(2, 3), "Tensor (2, 3)"),
                           (torch.zeros(3, dtype=torch.long), "Tensor (3,)"),
                           (torch.zeros(1, 2, 3, dtype=torch.long), "Tensor (1, 2, 3)"),
                           ([[1, 2]], "list ()")):
            with pytest.raises(ValueError, match=f"^{re.escape(prefix + '(b, l), got ' + shown)}$"):
                call(bad)
    _, states = model.prefill(_ids(2, 3))
    for bad, shown in ((torch.zeros(2), "Tensor (2,)"),
                       (torch.zeros(2, 1, dtype=torch.long), "Tensor (2, 1)"),
                       ([1, 2], "list ()")):
        with pytest.raises(ValueError, match=f"^{re.escape(prefix + '(b,), got ' + shown)}$"):
            model.step(bad, states)


def test_step_refuses_states_of_another_depth_or_type():
    """The defect fixed here: states of a model of another depth reached zip(strict=True) and
    failed with zip's message; now the argument, the expected and the given count are named."""
    torch.manual_seed(0)
    model, deeper, shallower = (MambaLM(V, 8, n, backend="reference") for n in (2, 3, 1))
    prompt, token = _ids(2, 4), _ids(2, 1)[:, 0]
    _, states = model.prefill(prompt)
    for other, n in ((deeper, 3), (shallower, 1)):
        _, wrong = other.prefill(prompt)
        with pytest.raises(ValueError, match=rf"^states must hold one MambaState per layer: "
                                             rf"expected 2, got {n}$"):
            model.step(token, wrong)
    for bad, name in ((None, "NoneType"), (states[0], "MambaState"), ({}, "dict")):
        with pytest.raises(TypeError, match=rf"^states must be a list of MambaState \(from "
                                            rf"prefill\), got {name}$"):
            model.step(token, bad)
    with pytest.raises(TypeError, match=r"^states\[1\] must be a MambaState, got Tensor$"):
        model.step(token, [states[0], states[1].ssm])
    with pytest.raises(TypeError, match=r"^states\[0\] must be a MambaState, got tuple$"):
        model.step(token, [tuple(states[0]), states[1]])
    # a tuple of states reads as the list does
    logits, new = model.step(token, tuple(states))
    expected, _ = model.step(token, states)
    torch.testing.assert_close(logits, expected, rtol=0, atol=0)
    assert len(new) == 2 and all(isinstance(s, MambaState) for s in new)
