"""The chapter's measuring tools: generation cost, gradient agreement, checkpoints, the explorer
and the benchmark's helpers."""

from __future__ import annotations

import argparse
import types

import matplotlib
import pytest
import torch

from sseq.lm import (
    GPT,
    LSTMLM,
    MambaLM,
    evaluate,
    explore,
    generate,
    generation_cost,
    load_checkpoint,
    load_pretrained,
    save_checkpoint,
    shakespeare,
    signal,
)
from sseq.lm import bench as lm_bench

matplotlib.use("Agg")
V = 65


# --- generation cost -------------------------------------------------------------------------


@pytest.mark.parametrize("cache", [True, False])
def test_generation_cost_reports_seconds_and_flops_per_position(cache):
    model = GPT(V, 64, 1, 2, 16)
    out = generation_cost(model, [4, 32], cache=cache, repeat=2)
    assert out["position"] == [4, 32] and len(out["seconds"]) == 2
    assert all(s > 0 for s in out["seconds"])
    assert out["flops"][1] > out["flops"][0]
    assert model.training  # restored


def test_generation_cost_checks_the_window():
    with pytest.raises(ValueError, match="positions must stay within the model's context = 16 "
                                         "with the 3 timed steps after them, got 14"):
        generation_cost(GPT(V, 16, 1, 2, 16), [14], repeat=2)
    with pytest.raises(ValueError, match="positions must be a non-empty list of ints >= 2"):
        generation_cost(LSTMLM(V, 8, 1), [1])
    with pytest.raises(ValueError, match="repeat must be a positive int"):
        generation_cost(LSTMLM(V, 8, 1), [4], repeat=0)
    out = generation_cost(MambaLM(V, 16, 1, d_state=4), [4, 300], repeat=1)
    assert out["flops"][0] == out["flops"][1]  # a running state: the same work anywhere


# --- teacher forcing -----------------------------------------------------------------------------


def test_teacher_forcing_gives_more_gradient_signal_per_sequence():
    torch.manual_seed(0)
    model = GPT(V, 32, 1, 2, 32)
    before = [p.clone() for p in model.parameters()]
    tf = signal.gradient_agreement(model, "all", sizes=(1, 4, 8), context=32)
    last = signal.gradient_agreement(model, "last", sizes=(1, 4, 8), context=32)
    assert tf["size"] == [1, 4, 8]
    assert all(a < b for a, b in zip(tf["cosine"], tf["cosine"][1:], strict=False))
    assert tf["cosine"][0] > 2 * last["cosine"][0]  # at the start of training
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    with pytest.raises(ValueError, match="sizes must be positive ints dividing max"):
        signal.gradient_agreement(model, sizes=(3, 4))
    with pytest.raises(ValueError, match="positions must be one of"):
        signal.sequence_loss(model, torch.zeros(1, 4, dtype=torch.long),
                             torch.zeros(1, 4, dtype=torch.long), "first")


def test_identical_windows_agree_perfectly():
    """The measurement's sanity check: a text of one repeated character has one window only."""
    corpus = shakespeare()
    same = type(corpus)("same", corpus.tokenizer, torch.full((1000,), 5), corpus.val)
    torch.manual_seed(0)
    out = signal.gradient_agreement(LSTMLM(V, 8, 1), "all", sizes=(1, 2), context=16,
                                    corpus=same)
    assert out["cosine"] == pytest.approx([1.0, 1.0], abs=1e-9)


# --- checkpoints -------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [lambda: GPT(V, 16, 1, 2, 16), lambda: LSTMLM(V, 16, 1),
                                  lambda: MambaLM(V, 16, 1, d_state=4)])
def test_a_checkpoint_round_trips(tmp_path, make):
    torch.manual_seed(0)
    model = make()
    tok = shakespeare().tokenizer
    path = save_checkpoint(model, tmp_path / "m.pt", tok, val_loss=1.5, recipe={"lr": 2e-3})
    loaded = load_checkpoint(path)
    assert type(loaded) is type(model) and not loaded.training
    assert loaded.meta == {"val_loss": 1.5, "recipe": {"lr": 2e-3}} and loaded.tokenizer == tok
    idx = torch.randint(V, (2, 10))
    torch.testing.assert_close(loaded(idx), model.eval()(idx), rtol=0, atol=0)
    assert generate(loaded, "JULIET:", 5, seed=1) == generate(model, "JULIET:", 5, seed=1,
                                                              tokenizer=tok)


def test_checkpoint_errors(tmp_path):
    with pytest.raises(TypeError, match="model must be a GPT, LSTMLM or MambaLM"):
        save_checkpoint(torch.nn.Linear(2, 2), tmp_path / "x.pt", shakespeare().tokenizer)
    with pytest.raises(ValueError, match="name must be one of"):
        load_pretrained("rnn")


@pytest.mark.parametrize("name", ["gpt", "lstm", "mamba"])
def test_the_shipped_checkpoints_load_and_score_as_stored(name):
    """The package's trained models: their validation loss on a slice is as good as stored."""
    model = load_pretrained(name)
    assert sum(p.numel() for p in model.parameters()) < 900_000
    loss = evaluate(model, "val", context=64, max_windows=64)
    assert abs(loss - model.meta["val_loss"]) < 0.15  # 64 of the 1,742 windows
    assert model.meta["val_loss"] < 2.0


# --- the explorer -------------------------------------------------------------------------------


def test_next_token_probs_follow_temperature_and_top_k():
    import matplotlib.pyplot as plt

    torch.manual_seed(0)
    model, tok = LSTMLM(V, 16, 1), shakespeare().tokenizer
    p = explore.next_token_probs(model, "JULIET:", tok, 0.7, 5)
    assert p.shape == (V,) and p.sum().item() == pytest.approx(1.0)
    assert (p > 0).sum().item() == 5
    fig, ax = plt.subplots()
    ax, probs = explore.plot_next_token(ax, model, "JULIET:", tok, 1.0, None, n_shown=7)
    assert len(ax.patches) == 7 and torch.equal(probs, explore.next_token_probs(model, "JULIET:",
                                                                                tok))
    assert ax.get_xlabel() == "next character" and "top-k = all" in ax.get_title()
    plt.close(fig)
    with pytest.raises(ValueError, match="temperature must be > 0 here"):
        explore.next_token_probs(model, "a", tok, 0.0)


def test_sampling_explorer_builds_its_controls():
    pytest.importorskip("ipywidgets")
    torch.manual_seed(0)
    box = explore.sampling_explorer({"lstm": LSTMLM(V, 8, 1)}, shakespeare().tokenizer,
                                    n_new=5)
    names = [getattr(w, "description", "") for w in box.children]
    assert names[:4] == ["model", "temperature τ", "top-k (0: all)", "seed"]


# --- the benchmark's helpers ----------------------------------------------------------------------


def test_interleaved_timing_and_a_training_step():
    calls = []
    out = lm_bench.interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                               repeat=3, warmup=1)
    assert calls == ["a", "b"] * 4 and set(out) == {"a", "b"} and len(out["a"].runs) == 3
    torch.manual_seed(0)
    model = LSTMLM(V, 8, 1)
    x = torch.randint(V, (2, 8))
    before = model.embedding.weight.clone()
    lm_bench.training_step(model, lambda: model(x).logsumexp(-1).mean())()
    assert not torch.equal(before, model.embedding.weight)


def test_nanogpt_is_loaded_from_the_given_path_only(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="no model.py in"):
        lm_bench.load_nanogpt(tmp_path)
    (tmp_path / "model.py").write_text(
        "import torch\n"
        "class GPTConfig:\n"
        "    def __init__(self, **kw): self.kw = kw\n"
        "class GPT(torch.nn.Linear):\n"
        "    def __init__(self, config):\n"
        "        print('number of parameters: 0.80M')\n"
        "        super().__init__(2, 2); self.kw = config.kw\n")
    model = lm_bench.load_nanogpt(tmp_path)
    assert model.kw == {"block_size": 64, "vocab_size": 65, "n_layer": 4, "n_head": 4,
                        "n_embd": 128, "dropout": 0.0, "bias": False}
    assert capsys.readouterr().out == ""
    assert isinstance(lm_bench.main, types.FunctionType) and argparse  # the CLI entry point
