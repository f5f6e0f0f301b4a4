"""sseq.lm.training: the loss against hand computations, the schedule, the optimizer's groups,
evaluation over windows, and a deterministic training loop."""

from __future__ import annotations

import math
import time

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


class Bigram(nn.Module):
    """A tiny model with a matrix (decayed) and a bias (not decayed) that records the mode of
    every forward pass: (training?, batch size)."""

    context = None

    def __init__(self, v=4):
        super().__init__()
        torch.manual_seed(0)
        self.embedding = nn.Embedding(v, 3)
        self.out = nn.Linear(3, v)
        self.modes = []

    def forward(self, idx):
        self.modes.append((self.training, len(idx)))
        return self.out(self.embedding(idx))


def _random_corpus(n=400, seed=0):
    ids = torch.randint(4, (n,), generator=torch.Generator().manual_seed(seed))
    return Corpus("random", CharTokenizer("abcd"), ids[: n - 120], ids[n - 120:])


def test_training_steps_equal_a_hand_written_adamw_loop():
    """Three steps of train_lm are, parameter for parameter, the loop written out by hand:
    the same windows, cross-entropy, global-norm clipping to grad_clip, AdamW with decay on
    the matrices only, the scheduled learning rate; and the records average the losses since
    the previous record."""
    corpus = _random_corpus()
    config = TrainConfig(steps=3, batch_size=2, context=4, lr=0.05, min_lr=0.01, warmup=1,
                         weight_decay=0.3, beta1=0.8, beta2=0.95, grad_clip=0.05,
                         eval_every=2, eval_windows=5, seed=4)
    model = Bigram()
    history = train_lm(model, config, corpus=corpus, progress=False)

    ref = Bigram()
    params = dict(ref.named_parameters())
    decayed = [params["embedding.weight"], params["out.weight"]]
    plain = [params["out.bias"]]
    opt = torch.optim.AdamW([{"params": decayed, "weight_decay": 0.3},
                             {"params": plain, "weight_decay": 0.0}], betas=(0.8, 0.95))
    g = torch.Generator().manual_seed(4)
    losses, rates = [], []
    for step in range(3):
        rate = 0.05 * (step + 1) / 2 if step < 1 else \
            0.01 + 0.5 * (1 + math.cos(math.pi * (step - 1) / 2)) * 0.04
        start = torch.randint(280 - 4, (2,), generator=g)
        window = torch.stack([corpus.train[s: s + 5] for s in start.tolist()])
        logits = ref(window[:, :-1])
        loss = -torch.log_softmax(logits, -1).gather(-1, window[:, 1:, None]).mean()
        for p in ref.parameters():
            p.grad = None
        loss.backward()
        norm = torch.sqrt(sum((p.grad ** 2).sum() for p in ref.parameters()))
        for p in ref.parameters():
            p.grad *= min(1.0, 0.05 / (norm.item() + 1e-6))
        for group in opt.param_groups:
            group["lr"] = rate
        opt.step()
        losses.append(loss.item())
        rates.append(rate)
    for (name, p), q in zip(model.named_parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)
    assert history["step"] == [2, 3] and history["tokens"] == [16, 24]
    assert history["train_loss"] == pytest.approx([(losses[0] + losses[1]) / 2, losses[2]],
                                                  rel=1e-5)
    assert history["lr"] == pytest.approx([rates[1], rates[2]], rel=1e-12)
    assert history["val_loss"][-1] == pytest.approx(
        evaluate(ref, context=4, corpus=corpus, max_windows=5), rel=1e-5)
    assert all(math.isnan(f) for f in history["flops"])  # no flops_per_step given


def test_training_runs_in_training_mode_and_ends_in_evaluation_mode():
    """Every training step reads with dropout on (training mode), even after an on_record
    callback that switched the model to evaluation; evaluation reads in evaluation mode; the
    model is returned in evaluation mode; on_record sees each record as it is appended."""
    corpus = _random_corpus()
    config = TrainConfig(steps=4, batch_size=2, context=4, warmup=1, eval_every=2,
                         eval_windows=3)
    model = Bigram().eval()
    seen = []

    def on_record(m, record):
        seen.append(dict(record))
        m.eval()

    history = train_lm(model, config, corpus=corpus, on_record=on_record, progress=False)
    assert not model.training
    train_modes = [mode for mode, b in model.modes if b == 2]  # the training batches
    eval_modes = [mode for mode, b in model.modes if b == 3]   # the 3 validation windows
    assert train_modes == [True] * 4 and eval_modes == [False] * 2
    assert [r["step"] for r in seen] == [2, 4] and seen[-1]["val_loss"] == history["val_loss"][-1]
    assert list(seen[0]) == ["step", "train_loss", "val_loss", "lr", "tokens", "flops",
                             "seconds", "cpu_seconds"]


def test_a_time_budget_stops_training_and_times_accumulate():
    """time_budget=0 stops after the first step, with a record; the seconds and CPU seconds
    recorded are cumulative training times, below the wall time of the whole call."""
    corpus = _random_corpus()
    config = TrainConfig(steps=50, batch_size=2, context=4, warmup=1, eval_every=3,
                         eval_windows=2)
    h = train_lm(Bigram(), config, corpus=corpus, time_budget=0.0, progress=False)
    assert h["step"] == [1] and h["tokens"] == [8]
    started, cpu_started = time.perf_counter(), time.process_time()
    h = train_lm(Bigram(), config, corpus=corpus, steps=9, progress=False)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    assert h["cpu_seconds"][2] <= cpu
    assert h["step"] == [3, 6, 9]
    assert 0 < h["seconds"][0] < h["seconds"][1] < h["seconds"][2] < wall
    assert 0 < h["cpu_seconds"][0] < h["cpu_seconds"][2]


def test_evaluate_picks_evenly_spread_windows_in_batches_and_restores_the_mode():
    """max_windows scores windows 0, round((n − 1) / 2), n − 1 (for 3 of n); batches of any
    size weigh each window once; the model's mode is put back."""
    corpus = _random_corpus()
    model = Bigram().train()
    x = corpus.val[:-1][: (119 // 4) * 4].view(-1, 4)   # 29 windows of 4
    y = corpus.val[1:][: (119 // 4) * 4].view(-1, 4)
    with torch.no_grad():
        def loss(rows):
            logits = model.out(model.embedding(x[rows]))
            return -torch.log_softmax(logits, -1).gather(-1, y[rows][..., None]).mean().item()
        every, spread = loss(list(range(29))), loss([0, 14, 28])
    for batch_size in (1, 4, 64):
        assert evaluate(model, context=4, corpus=corpus, batch_size=batch_size) == \
            pytest.approx(every, rel=1e-6)
        assert model.training
    assert evaluate(model, context=4, corpus=corpus, max_windows=3, batch_size=2) == \
        pytest.approx(spread, rel=1e-6)
    assert evaluate(model, context=4, corpus=corpus, max_windows=29) == \
        pytest.approx(every, rel=1e-6)
    assert evaluate(model.eval(), context=4, corpus=corpus, max_windows=3) == \
        pytest.approx(spread, rel=1e-6) and not model.training
    assert evaluate(model, "train", context=4, corpus=corpus, max_windows=1) != \
        pytest.approx(evaluate(model, "val", context=4, corpus=corpus, max_windows=1))
    gpt = GPT(4, 8, 1, 1, 8)
    assert math.isfinite(evaluate(gpt, context=8, corpus=corpus))  # exactly the model's window


def test_schedule_optimizer_and_config_edges():
    """The schedule's edges (no warm-up, a one-step decay, past the last step), the optimizer's
    settings and what it leaves out (frozen parameters, flagged matrices), each config refusal."""
    c = TrainConfig(steps=2, lr=1e-3, min_lr=2e-4, warmup=1)
    assert [learning_rate(s, c) for s in (0, 1, 2, 5)] == pytest.approx([5e-4, 1e-3, 2e-4, 2e-4])
    c = TrainConfig(steps=10, lr=1e-3, min_lr=1e-3, warmup=0)  # min_lr == lr is allowed
    assert learning_rate(0, c) == pytest.approx(1e-3)
    model = Bigram()
    model.out.bias.requires_grad_(False)
    model.embedding.weight._no_weight_decay = True
    config = TrainConfig(lr=3e-3, beta1=0.7, beta2=0.9, weight_decay=0.2)
    opt = make_optimizer(model, config)
    decay, no_decay = opt.param_groups
    assert decay["params"] == [model.out.weight] and decay["weight_decay"] == 0.2
    assert no_decay["params"] == [model.embedding.weight] and no_decay["weight_decay"] == 0.0
    assert decay["lr"] == 3e-3 and decay["betas"] == (0.7, 0.9)
    for name in ("steps", "batch_size", "context", "eval_every", "eval_windows"):
        for bad in (0, True, 2.0):
            with pytest.raises(ValueError, match=rf"^{name} must be a positive int, got {bad}$"):
                TrainConfig(**{name: bad})
        TrainConfig(**{name: 1})
    with pytest.raises(ValueError, match=r"^need 0 < min_lr <= lr, got lr=0.001, min_lr=0$"):
        TrainConfig(min_lr=0)
    for bad in (True, 1.0, -1):
        with pytest.raises(ValueError, match=rf"^seed must be an int >= 0, got {bad}$"):
            TrainConfig(seed=bad)
    with pytest.raises(ValueError, match=r"^logits must have shape \(b, l, v\) with \(b, l\) = "
                                         r"\(2, 3\), got \(2, 4, 5\)$"):
        lm_loss(torch.zeros(2, 4, 5), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"^context must be at most the model's context = 8, "
                                         r"got 9$"):
        evaluate(GPT(4, 8, 1, 1, 8), context=9, corpus=_random_corpus())


class _Clock:
    """A fake clock: each step's two readings are ``step_s`` apart, and the readings of one
    step are ``gap_s`` after the previous step's (time spent outside the step: evaluating)."""

    def __init__(self, start, step_s, gap_s):
        self.now, self.step_s, self.gap_s, self.calls = start, step_s, gap_s, 0

    def __call__(self):
        self.calls += 1
        if self.calls > 1:
            self.now += self.step_s if self.calls % 2 == 0 else self.gap_s
        return self.now


class _Bar:
    """Stands in for tqdm: records how it was made and every postfix it was shown."""

    made: list = []

    def __init__(self, iterable, **kwargs):
        self.iterable, self.kwargs, self.postfixes, self.closed = iterable, kwargs, [], False
        _Bar.made.append(self)

    def __iter__(self):
        return iter(self.iterable)

    def set_postfix(self, **kwargs):
        self.postfixes.append(kwargs)

    def close(self):
        self.closed = True


def test_train_lm_times_each_step_and_shows_a_progress_bar(monkeypatch):
    """Protects what the history and the bar report: ``seconds`` and ``cpu_seconds`` add up
    only the steps' own time (from 0, evaluation excluded), a time budget stops at the first
    step that reaches it (>=), and the bar (shown by default, described as "training", not left
    behind) is closed after showing each record's mean training loss and validation loss."""
    import importlib
    import types

    training = importlib.import_module("sseq.lm.training")
    wall, cpu = _Clock(1000.0, 0.5, 7.0), _Clock(50.0, 0.25, 3.0)
    monkeypatch.setattr(training, "time", types.SimpleNamespace(perf_counter=wall,
                                                                process_time=cpu))
    monkeypatch.setattr(training, "tqdm", _Bar)
    _Bar.made = []
    corpus = _random_corpus()
    config = TrainConfig(steps=6, batch_size=2, context=4, warmup=1, eval_every=2,
                         eval_windows=2)
    h = train_lm(Bigram(), config, corpus=corpus)
    assert h["step"] == [2, 4, 6]
    assert h["seconds"] == [1.0, 2.0, 3.0]
    assert h["cpu_seconds"] == [0.5, 1.0, 1.5]
    (bar,) = _Bar.made
    assert list(bar.iterable) == list(range(6)) and bar.closed
    assert bar.kwargs == {"desc": "training", "disable": False, "leave": False}
    assert bar.postfixes == [{"train": f"{t:.3f}", "val": f"{v:.3f}"}
                             for t, v in zip(h["train_loss"], h["val_loss"], strict=True)]

    _Bar.made = []
    wall.__init__(0.0, 0.5, 7.0)
    cpu.__init__(0.0, 0.25, 3.0)
    h = train_lm(Bigram(), config, corpus=corpus, time_budget=1.0, progress=False)
    assert h["step"] == [2] and h["seconds"] == [1.0]  # 0.5 + 0.5 reaches the budget exactly
    assert _Bar.made[0].kwargs["disable"] is True


def test_make_optimizer_skips_frozen_parameters_and_keeps_the_rest():
    """Protects the optimizer's groups when a parameter is frozen: that one is left out, and
    every trainable parameter after it is still optimized (a loop that stopped at the first
    frozen parameter would silently freeze the rest of the model)."""
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 2))
    model[0].weight.requires_grad_(False)
    groups = make_optimizer(model, TrainConfig()).param_groups
    held = [p for g in groups for p in g["params"]]
    assert len(held) == 3 and all(p is not model[0].weight for p in held)
    assert [len(g["params"]) for g in groups] == [1, 2]  # model[1].weight; the two biases
