"""sseq.lm.training: the loss against hand computations, the schedule, the optimizer's groups,
evaluation over windows, and a deterministic training loop."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from sseq.lm import (
    GPT,
    LSTMLM,
    CharTokenizer,
    Corpus,
    MambaLM,
    TrainConfig,
    bits_per_char,
    evaluate,
    learning_rate,
    lm_loss,
    make_optimizer,
    perplexity,
    train_lm,
)


class FixedLogits(nn.Module):
    """A 'model' whose prediction is the same distribution everywhere."""

    context = None

    def __init__(self, logits):
        super().__init__()
        self.logits = nn.Parameter(torch.as_tensor(logits, dtype=torch.float32))

    def forward(self, idx):
        return self.logits.expand(*idx.shape, -1)


def _corpus(text="abcabcabd" * 40):
    tok = CharTokenizer.from_text(text)
    ids = tok.encode(text)
    return Corpus("toy", tok, ids[:300], ids[300:])


def test_loss_bits_and_perplexity_by_hand():
    # p = (1/2, 1/4, 1/4) everywhere; targets a, b, a, c: −(ln ½ + ln ¼ + ln ½ + ln ¼) / 4
    logits = torch.log(torch.tensor([0.5, 0.25, 0.25])).expand(1, 4, 3)
    loss = lm_loss(logits, torch.tensor([[0, 1, 0, 2]])).item()
    assert loss == pytest.approx(1.5 * math.log(2), rel=1e-6)
    assert bits_per_char(loss) == pytest.approx(1.5, rel=1e-6)
    assert perplexity(loss) == pytest.approx(2**1.5, rel=1e-6)  # 2.83 equally likely choices
    assert perplexity(math.log(65)) == pytest.approx(65)  # uniform over 65 characters


def test_evaluate_scores_every_validation_target_once():
    corpus = _corpus()
    model = FixedLogits(torch.log(torch.tensor([0.4, 0.3, 0.2, 0.1])))
    ids = corpus.val
    n = (len(ids) - 1) // 8
    targets = ids[1: n * 8 + 1]
    expected = -torch.log(torch.tensor([0.4, 0.3, 0.2, 0.1]))[targets].mean().item()
    assert evaluate(model, "val", context=8, corpus=corpus) == pytest.approx(expected, rel=1e-6)
    gpt = GPT(4, 8, 1, 1, 8)
    with pytest.raises(ValueError, match="context must be at most the model's context = 8"):
        evaluate(gpt, "val", context=16, corpus=corpus)


def test_learning_rate_warms_up_then_follows_a_cosine_to_min_lr():
    c = TrainConfig(steps=1100, lr=1e-3, min_lr=1e-4, warmup=100)
    assert learning_rate(0, c) == pytest.approx(1e-3 / 101)
    assert learning_rate(99, c) == pytest.approx(1e-3 * 100 / 101)
    assert learning_rate(100, c) == pytest.approx(1e-3)
    assert learning_rate(600, c) == pytest.approx(5.5e-4)  # halfway: the mean of the two
    assert learning_rate(1100, c) == pytest.approx(1e-4)


def test_weight_decay_reaches_matrices_and_embeddings_only():
    model = MambaLM(7, 16, 1, d_state=4)
    decay, no_decay = make_optimizer(model, TrainConfig()).param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    assert "backbone.embedding.weight" in decayed and decay["weight_decay"] == 0.1
    assert "backbone.layers.0.mixer.in_proj.weight" in decayed
    assert not decayed & {"backbone.layers.0.mixer.A_log", "backbone.layers.0.mixer.D",
                          "backbone.norm_f.weight", "backbone.layers.0.mixer.dt_proj.bias"}
    assert no_decay["weight_decay"] == 0.0
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


@pytest.mark.parametrize("family", ["gpt", "lstm", "mamba"])
def test_training_is_deterministic_and_lowers_the_loss(family):
    corpus = _corpus()
    config = TrainConfig(steps=30, batch_size=4, context=8, lr=1e-2, min_lr=1e-3, warmup=5,
                         eval_every=10, eval_windows=4)

    def run():
        torch.manual_seed(0)
        model = {"gpt": lambda: GPT(4, 8, 1, 2, 16), "lstm": lambda: LSTMLM(4, 16, 1),
                 "mamba": lambda: MambaLM(4, 16, 1, d_state=4)}[family]()
        return train_lm(model, config, corpus=corpus, flops_per_step=1000.0, progress=False)

    a, b = run(), run()
    assert a["step"] == [10, 20, 30] and a["tokens"] == [320, 640, 960]
    assert a["flops"] == [1e4, 2e4, 3e4]
    assert 0 < a["cpu_seconds"][0] < a["cpu_seconds"][-1] and a["seconds"][0] > 0
    for key in ("train_loss", "val_loss", "lr"):
        assert a[key] == b[key]
    assert a["val_loss"][-1] < 0.8 * math.log(4)  # the pattern abcabcabd is learned


def test_a_prefix_run_follows_the_full_schedule():
    corpus = _corpus()
    config = TrainConfig(steps=40, batch_size=2, context=8, warmup=5, eval_every=10,
                         eval_windows=2)
    torch.manual_seed(0)
    full = train_lm(LSTMLM(4, 8, 1), config, corpus=corpus, progress=False)
    torch.manual_seed(0)
    part = train_lm(LSTMLM(4, 8, 1), config, corpus=corpus, steps=20, progress=False)
    assert part["step"] == [10, 20]
    assert part["train_loss"] == full["train_loss"][:2] and part["lr"] == full["lr"][:2]


def test_train_config_checks():
    with pytest.raises(ValueError, match="steps must be a positive int, got 0"):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match="need 0 < min_lr <= lr"):
        TrainConfig(lr=1e-4, min_lr=1e-3)
    with pytest.raises(ValueError, match="seed must be an int >= 0"):
        TrainConfig(seed=-1)
    with pytest.raises(ValueError, match=r"logits must have shape \(b, l, v\)"):
        lm_loss(torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.long))
