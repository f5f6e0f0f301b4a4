"""The experiments' run definitions, against independently written expectations.

Each experiment (``python -m sseq.experiments NAME``) is a config, a list of jobs, a
``run_job`` that trains or scores one of them, a ``summarize`` and the chapter's readers of the
stored results. These tests check each of those pieces on its own, fast: the expensive calls a
run makes (training, the corpus, a pretrained model) are replaced by fakes that record what
they were asked, and the numbers a run derives from them are computed here by hand.
"""

from __future__ import annotations

import dataclasses
import math
import pickle
import types

import matplotlib
import numpy as np
import pytest
import torch

from sseq import lm
from sseq.experiments import lm as exp_lm

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from sseq.viz import PALETTE  # noqa: E402

# --- lm: the three character language models ----------------------------------------------------

SMALL = exp_lm.Config(steps=60, batch_size=3, context=8, lr=5e-3, min_lr=1e-4, warmup=7,
                      eval_every=20, eval_windows=5, d_model=12, gpt_layers=2, gpt_heads=3,
                      lstm_d_model=10, lstm_layers=3, mamba_layers=2, d_state=5,
                      sample_steps=(20, 60), sample_length=7, ngram_order=2, nanogpt_lr=1e-3)


def test_lm_defaults_are_the_documented_full_run():
    """The full run is the module docstring's: 2,000 steps of 12 windows of 64 characters,
    lr 2e-3 for all three, nanoGPT's 1e-3 for one more GPT, n-grams up to order 10; QUICK is
    the short version without the extra GPT; the prefix test re-runs 100 steps."""
    c = exp_lm.Config()
    assert (c.steps, c.batch_size, c.context, c.lr, c.min_lr, c.warmup) == (
        2000, 12, 64, 2e-3, 2e-4, 100)
    assert (c.d_model, c.gpt_layers, c.gpt_heads, c.lstm_d_model, c.lstm_layers,
            c.mamba_layers, c.d_state) == (128, 4, 4, 224, 2, 7, 16)
    assert c.models == ("gpt", "mamba", "lstm") and c.nanogpt_lr == 1e-3
    assert c.sample_steps[-1] == c.steps and c.sample_length == 200 and c.ngram_order == 10
    q = exp_lm.QUICK
    assert (q.steps, q.eval_every, q.eval_windows, q.sample_steps, q.ngram_order,
            q.nanogpt_lr) == (60, 20, 32, (20, 60), 3, 0.0)
    assert exp_lm.PREFIX_STEPS == 100 and exp_lm.RECORDS == ("step", "train_loss", "val_loss")
    assert exp_lm.PROMPT == "JULIET:\n"


def _same_parameters(a, b) -> bool:
    pa, pb = list(a.parameters()), list(b.parameters())
    return len(pa) == len(pb) and all(torch.equal(p, q) for p, q in zip(pa, pb, strict=True))


def test_lm_build_makes_each_family_from_the_config_and_the_seed():
    """``build``: the GPT, LSTM and Mamba of the config's sizes over the 65 characters,
    initialised exactly as seeding the global generator with the run's seed would, without
    moving the caller's generator."""
    want = {"gpt": lambda: lm.GPT(65, 8, 2, 3, 12),
            "lstm": lambda: lm.LSTMLM(65, 10, 3),
            "mamba": lambda: lm.MambaLM(65, 12, 2, 5)}
    for name, make in want.items():
        torch.manual_seed(123)
        before = torch.rand(3)
        torch.manual_seed(123)
        got = exp_lm.build(SMALL, name, 4)
        assert torch.equal(torch.rand(3), before), name  # the caller's stream is untouched
        torch.manual_seed(4)
        assert _same_parameters(got, make()), name
        torch.manual_seed(5)
        assert not _same_parameters(got, make()), name
    assert exp_lm.build(SMALL, "gpt", 0).config == lm.GPT(65, 8, 2, 3, 12).config
    assert exp_lm.build(SMALL, "lstm", 0).config == lm.LSTMLM(65, 10, 3).config
    assert exp_lm.build(SMALL, "mamba", 0).config == lm.MambaLM(65, 12, 2, 5).config
    with pytest.raises(ValueError) as err:
        exp_lm.build(SMALL, "rnn", 0)
    assert str(err.value) == "model must be 'gpt', 'lstm' or 'mamba', got 'rnn'"


def test_lm_train_config_is_the_configs_recipe_or_nanogpts():
    """``train_config``: the config's steps, batches, schedule and evaluation with the run's
    seed; with an ``lr`` (nanoGPT's run) that peak and a minimum ten times lower."""
    common = dict(steps=60, batch_size=3, context=8, warmup=7, eval_every=20, eval_windows=5)
    assert exp_lm.train_config(SMALL, 3) == lm.TrainConfig(**common, lr=5e-3, min_lr=1e-4,
                                                           seed=3)
    assert exp_lm.train_config(SMALL, 2, 1e-3) == lm.TrainConfig(**common, lr=1e-3,
                                                                 min_lr=1e-4, seed=2)
    assert exp_lm.train_config(SMALL, 0, 4e-3).min_lr == pytest.approx(4e-4, rel=1e-12)


def test_lm_jobs_are_every_model_and_seed_then_nanogpts_gpt():
    """``jobs``: one run per (model, seed), models in the config's order, then, when
    ``nanogpt_lr`` is set, a GPT per seed with that learning rate; none with 0."""
    run = [{"label": m, "model": m, "lr": 5e-3, "seed": s}
           for m in ("gpt", "mamba", "lstm") for s in (0, 2)]
    extra = [{"label": "gpt_nanogpt_lr", "model": "gpt", "lr": 1e-3, "seed": s} for s in (0, 2)]
    assert exp_lm.jobs(SMALL, [0, 2]) == run + extra
    no_extra = dataclasses.replace(SMALL, nanogpt_lr=0.0, models=("lstm",))
    assert exp_lm.jobs(no_extra, [1]) == [{"label": "lstm", "model": "lstm", "lr": 5e-3,
                                           "seed": 1}]


class _FakeLM:
    """Stands in for :mod:`sseq.lm` in ``run_job``: the real models, a fake corpus, training,
    sampling and evaluation that record their arguments."""

    def __init__(self):
        self.corpus = types.SimpleNamespace(tokenizer=object(), train=None, val=None)
        self.calls = {"train_lm": [], "generate": [], "evaluate": [], "flops": []}
        self.GPT, self.LSTMLM, self.MambaLM = lm.GPT, lm.LSTMLM, lm.MambaLM
        self.TrainConfig = lm.TrainConfig

    def shakespeare(self):
        return self.corpus

    def train_step_flops(self, model, batch_size, context):
        self.calls["flops"].append((model, batch_size, context))
        return 1000 * batch_size + context

    def train_lm(self, model, recipe, *, corpus, steps, flops_per_step, on_record, progress):
        self.calls["train_lm"].append(dict(model=model, recipe=recipe, corpus=corpus,
                                           steps=steps, flops=flops_per_step,
                                           progress=progress))
        log = {"step": [], "val_loss": [], "seconds": [], "cpu_seconds": []}
        for n, step in enumerate((20, 40, 60)):
            record = {"step": step, "val_loss": 4.0 - n}
            log["step"].append(step)
            log["val_loss"].append(4.0 - n)
            log["seconds"].append(10.0 * (n + 1))
            log["cpu_seconds"].append(30.0 * (n + 1))
            on_record(model, record)
        return log

    def generate(self, model, prompt, n_new, *, seed, tokenizer):
        self.calls["generate"].append((model, prompt, n_new, seed, tokenizer))
        return f"sample {len(self.calls['generate'])}"

    def evaluate(self, model, split, *, context):
        self.calls["evaluate"].append((model, split, context))
        return 1.25


@pytest.fixture
def fake_lm(monkeypatch, tmp_path):
    fake, saved = _FakeLM(), []
    monkeypatch.setattr(exp_lm, "lm", fake)
    monkeypatch.setattr(exp_lm, "CHECKPOINTS", tmp_path)
    monkeypatch.setattr(exp_lm, "save_checkpoint", lambda *a, **k: saved.append((a, k)))
    fake.saved = saved
    return fake


def test_lm_run_job_trains_the_built_model_with_its_recipe_and_samples(fake_lm):
    """``run_job``: trains the job's model (seeded) on the corpus with the job's recipe and
    FLOPs per step, draws a sample (seed 0, from the prompt, ``sample_length`` characters) at
    each of ``sample_steps`` only, and logs its parameters and, for a whole run, the loss on
    the full validation split; no checkpoint for a config other than the full run."""
    job = {"label": "gpt_nanogpt_lr", "model": "gpt", "lr": 1e-3, "seed": 2}
    log = exp_lm.run_job(SMALL, job)
    call = fake_lm.calls["train_lm"][0]
    model = call["model"]
    assert _same_parameters(model, exp_lm.build(SMALL, "gpt", 2))
    assert call["recipe"] == exp_lm.train_config(SMALL, 2, 1e-3)
    assert call["corpus"] is fake_lm.corpus and call["steps"] is None
    assert call["progress"] is False
    assert fake_lm.calls["flops"] == [(model, 3, 8)] and call["flops"] == 3008
    tok = fake_lm.corpus.tokenizer
    assert fake_lm.calls["generate"] == [(model, "JULIET:\n", 7, 0, tok)] * 2
    assert log["samples"] == {"step": [20, 60], "val_loss": [4.0, 2.0],
                              "text": ["sample 1", "sample 2"]}
    assert log["parameters"] == sum(p.numel() for p in lm.GPT(65, 8, 2, 3, 12).parameters())
    assert fake_lm.calls["evaluate"] == [(model, "val", 8)] and log["final_val_loss"] == 1.25
    assert log["step"] == [20, 40, 60] and fake_lm.saved == []


def test_lm_a_prefix_run_skips_the_final_evaluation(fake_lm):
    """``run_job(steps=...)``: trains that many steps and neither evaluates the whole
    validation split nor saves a model, even for the full run's seed-0 GPT."""
    job = {"label": "lstm", "model": "lstm", "lr": 2e-3, "seed": 0}
    config = dataclasses.replace(exp_lm.Config(), lstm_d_model=8, lstm_layers=1)
    log = exp_lm.run_job(config, job, steps=3)
    assert fake_lm.calls["train_lm"][0]["steps"] == 3
    assert "final_val_loss" not in log and fake_lm.calls["evaluate"] == []
    assert fake_lm.saved == []
    full = dict(job, label="gpt", model="gpt")
    exp_lm.run_job(exp_lm.Config(), full, steps=100)
    assert fake_lm.saved == []


def test_lm_only_the_full_runs_seed_0_models_are_saved(fake_lm, tmp_path):
    """The checkpoint of a model is written by the full configuration's seed-0 run of that
    model (not by another seed, not by the nanoGPT-lr GPT), to ``CHECKPOINTS/<model>.pt``,
    with its recipe, context, validation loss and training times."""
    config = exp_lm.Config()
    job = {"label": "lstm", "model": "lstm", "lr": 2e-3, "seed": 0}
    log = exp_lm.run_job(config, job)
    assert len(fake_lm.saved) == 1
    args, meta = fake_lm.saved[0]
    assert args == (fake_lm.calls["train_lm"][0]["model"], tmp_path / "lstm.pt",
                    fake_lm.corpus.tokenizer)
    assert meta == {"recipe": dataclasses.asdict(exp_lm.train_config(config, 0, 2e-3)),
                    "context": 64, "val_loss": 1.25, "train_seconds": 30.0,
                    "train_cpu_seconds": 90.0}
    assert log["final_val_loss"] == 1.25
    exp_lm.run_job(config, dict(job, seed=1))
    exp_lm.run_job(config, {"label": "gpt_nanogpt_lr", "model": "gpt", "lr": 1e-3, "seed": 0})
    exp_lm.run_job(dataclasses.replace(config, lstm_layers=1), job)
    assert len(fake_lm.saved) == 1


def test_lm_ngram_losses_score_every_order_on_both_splits(monkeypatch):
    """``ngram_losses``: the Kneser–Ney model fitted on the training split, its mean negative
    log-likelihood (nats/char) at orders 0..order on the validation and the training split;
    order 0 is the uniform model, ln v."""
    ids = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 1, 2, 0, 2, 1, 0, 0, 1, 2, 2, 0, 1])
    tokenizer = types.SimpleNamespace(vocab_size=3)
    corpus = types.SimpleNamespace(tokenizer=tokenizer, train=ids[:14], val=ids[14:])
    monkeypatch.setattr(exp_lm, "lm", types.SimpleNamespace(shakespeare=lambda: corpus,
                                                            KneserNey=lm.KneserNey))
    got = exp_lm.ngram_losses(2)
    model = lm.KneserNey(2, 3).fit(ids[:14])
    assert got["order"] == [0, 1, 2]
    for split, data in (("val", ids[14:]), ("train", ids[:14])):
        want = [-float(np.mean(model.log_prob(data, n))) for n in (0, 1, 2)]
        assert got[split] == pytest.approx(want, rel=1e-12), split
        assert got[split][0] == pytest.approx(math.log(3), rel=1e-12)
        assert all(isinstance(v, float) for v in got[split])
    assert got["train"][2] < got["train"][1] < got["train"][0]  # more context fits the train


def _lm_run(label, seed, val, seconds, cpu, params, flops):
    return {"label": label, "seed": seed,
            "log": {"final_val_loss": val, "seconds": [1.0, 2.0, seconds],
                    "cpu_seconds": [0.5, 0.7, cpu], "parameters": params,
                    "flops": [7, 8, flops]}}


def test_lm_summarize_collects_each_label_seed_by_seed(monkeypatch):
    """``summarize``: per label, the final validation loss and the (wall, CPU) training
    seconds of each seed in order, the parameters and the total FLOPs; a prefix run without a
    final loss gives None; and the n-gram losses at the config's order."""
    asked = []
    monkeypatch.setattr(exp_lm, "ngram_losses", lambda order: asked.append(order) or "ngrams")
    runs = [_lm_run("gpt", 0, 1.5, 10.0, 20.0, 100, 1e9),
            _lm_run("lstm", 0, 1.7, 11.0, 21.0, 90, 2e9),
            _lm_run("gpt", 1, 1.6, 12.0, 22.0, 100, 1e9)]
    del runs[1]["log"]["final_val_loss"]
    got = exp_lm.summarize(SMALL, runs)
    assert asked == [2] and got["ngram"] == "ngrams"
    assert got["models"] == {
        "gpt": {"final_val_loss": [1.5, 1.6], "train_seconds": [10.0, 12.0],
                "train_cpu_seconds": [20.0, 22.0], "parameters": 100, "flops": 1e9},
        "lstm": {"final_val_loss": [None], "train_seconds": [11.0],
                 "train_cpu_seconds": [21.0], "parameters": 90, "flops": 2e9}}


def _lm_results():
    def log(label, scale):
        return {"flops": [scale * 1e12, scale * 3e12], "seconds": [scale * 2, scale * 9],
                "cpu_seconds": [scale * 4, scale * 18], "val_loss": [3.0 / scale, 2.0 / scale],
                "samples": {"step": [10, 20], "val_loss": [3.0, 2.5], "text": ["ab", "cd"]}}

    runs = [{"label": "lstm", "seed": 1, "log": log("lstm", 0.5)},
            {"label": "gpt", "seed": 0, "log": log("gpt", 1.0)},
            {"label": "lstm", "seed": 0, "log": log("lstm", 2.0)},
            {"label": "gpt_nanogpt_lr", "seed": 0, "log": log("x", 4.0)}]
    ngram = {"order": [0, 1, 2, 3, 4, 5, 6, 7], "val": [4.2, 3.3, 2.5, 2.1, 2.0, 1.95, 1.9, 2.2]}
    return {"runs": runs, "summary": {"ngram": ngram}}


def test_lm_run_log_best_ngram_and_samples_read_the_stored_results():
    """``run_log``: the log of the first run with the label, or of the given seed, and a
    ValueError naming the missing label; ``best_ngram``: the order with the lowest validation
    loss and that loss; ``samples``: (step, loss, text) of the label's first run."""
    results = _lm_results()
    assert exp_lm.run_log(results, "lstm") is results["runs"][0]["log"]
    assert exp_lm.run_log(results, "lstm", seed=0) is results["runs"][2]["log"]
    assert exp_lm.run_log(results, "lstm", seed=1) is results["runs"][0]["log"]
    with pytest.raises(ValueError) as err:
        exp_lm.run_log(results, "mamba")
    assert str(err.value) == "no run labelled 'mamba' in these results"
    with pytest.raises(ValueError):
        exp_lm.run_log(results, "gpt", seed=1)
    assert exp_lm.best_ngram(results) == (6, 1.9)
    tie = {"summary": {"ngram": {"order": [0, 1, 2], "val": [3.0, 1.0, 1.0]}}}
    assert exp_lm.best_ngram(tie) == (1, 1.0)  # the smaller model wins a tie
    assert exp_lm.samples(results) == [(10, 3.0, "ab"), (20, 2.5, "cd")]
    assert exp_lm.samples(results, "lstm") == [(10, 3.0, "ab"), (20, 2.5, "cd")]
    with pytest.raises(ValueError):
        exp_lm.samples(results, "mamba")


def test_lm_plot_loss_vs_compute_draws_each_run_and_the_ngram_lines():
    """``plot_loss_vs_compute``: one line per label present (in the book's order, first seed),
    validation loss against TFLOP, in the family's colour, dashed for the nanoGPT-lr GPT; the
    2-gram, 5-gram and best n-gram losses as black reference lines; a log axis with 1-2-5
    ticks, and axis labels that name the unit."""
    fig, ax = plt.subplots()
    results = _lm_results()
    assert exp_lm.plot_loss_vs_compute(ax, results) is ax
    lines = ax.get_lines()
    runs = lines[:3]
    assert [line.get_label() for line in runs] == ["GPT (Transformer)", "LSTM",
                                                  "GPT, nanoGPT's lr 1e-3"]
    assert list(runs[0].get_xdata()) == [1e12 / 1e12, 3e12 / 1e12]  # TFLOP, exactly
    assert list(runs[1].get_xdata()) == [0.5e12 / 1e12, 1.5e12 / 1e12]  # seed 1: stored first
    assert list(runs[1].get_ydata()) == [6.0, 4.0]
    assert [line.get_color() for line in runs] == [PALETTE["attention"], PALETTE["extra2"],
                                                  PALETTE["theory"]]
    assert [line.get_linestyle() for line in runs] == ["-", "-", "--"]
    refs = lines[3:]
    assert [line.get_label() for line in refs] == ["Kneser–Ney 2-gram", "Kneser–Ney 5-gram",
                                                  "Kneser–Ney 6-gram"]
    assert [line.get_ydata()[0] for line in refs] == [2.5, 1.95, 1.9]
    assert [line.get_linestyle() for line in refs] == [":", "--", "-."]
    assert refs[1]._unscaled_dash_pattern == (0, (5, 3))  # 5 on, 3 off, from the start
    assert all(line.get_color() == PALETTE["reference"] for line in refs)
    assert all(line.get_linewidth() == 0.9 for line in refs)
    assert ax.get_xscale() == "log"
    lo, hi = ax.get_xlim()
    want = [t * 10.0**e for e in range(-2, 5) for t in (1, 2, 5) if lo <= t * 10.0**e <= hi]
    assert list(ax.get_xticks()) == pytest.approx(want) and 1.0 in want
    assert [t.get_text() for t in ax.get_xticklabels()] == [f"{t:g}" for t in want]
    assert ax.get_xlabel() == "training compute (TFLOP)"
    assert ax.get_ylabel() == "validation loss (nats / char)"
    assert ax.get_title() == "Validation loss against compute"
    assert ax.xaxis.get_minor_formatter().__class__.__name__ == "NullFormatter"
    plt.close(fig)


def test_lm_plot_against_time_uses_seconds_unscaled():
    """``x="seconds"`` and ``x="cpu_seconds"``: the run's seconds as stored (no TFLOP scale),
    only the labels asked for, and the time axis named."""
    results = _lm_results()
    for x, label in (("seconds", "training time, wall clock (s)"),
                     ("cpu_seconds", "training time, one core (CPU s)")):
        fig, ax = plt.subplots()
        exp_lm.plot_loss_vs_compute(ax, results, x=x, labels=["gpt"])
        run = ax.get_lines()[0]
        assert run.get_label() == "GPT (Transformer)" and len(ax.get_lines()) == 1 + 3
        assert list(run.get_xdata()) == results["runs"][1]["log"][x]
        assert ax.get_xlabel() == label
        assert ax.get_title() == "Validation loss against time"
        plt.close(fig)


def test_lm_plot_ticks_are_1_2_5_from_a_hundredth_to_fifty_thousand():
    """The compute/time axis is labelled at 1, 2 and 5 times the powers of ten from 0.01 to
    50,000 that lie in the view, the view's ends included (a run may span the whole range)."""
    results = {"runs": [{"label": "gpt", "seed": 0,
                         "log": {"seconds": [1e-3, 1e6], "val_loss": [3.0, 2.0]}}],
               "summary": {"ngram": {"order": list(range(7)),
                                     "val": [4.0, 3.0, 2.5, 2.2, 2.1, 2.0, 1.9]}}}
    fig, ax = plt.subplots()
    exp_lm.plot_loss_vs_compute(ax, results, x="seconds")
    want = [t * 10.0**e for e in range(-2, 5) for t in (1, 2, 5)]
    assert list(ax.get_xticks()) == pytest.approx(want) and want[-1] == 50_000
    plt.close(fig)
    fig, ax = plt.subplots()
    ax.set_xscale("log")
    ax.set_xlim(1, 10)
    ax.set_autoscalex_on(False)  # a view from exactly 1 to 10: both ends are ticks
    exp_lm.plot_loss_vs_compute(ax, results, x="seconds")
    assert list(ax.get_xticks()) == pytest.approx([1.0, 2.0, 5.0, 10.0])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "5", "10"]
    plt.close(fig)


def test_lm_samples_refuse_a_log_whose_lists_disagree():
    """``samples`` pairs each step with its loss and text, and refuses a stored log whose
    lists have different lengths instead of dropping samples silently."""
    results = _lm_results()
    results["runs"][1]["log"]["samples"]["text"] = ["ab"]
    with pytest.raises(ValueError):
        exp_lm.samples(results, "gpt")


def test_lm_colours_are_the_book_palettes_families():
    """Each run label has its family's colour: attention for the GPTs' own, state for Mamba."""
    assert exp_lm._color("gpt") == PALETTE["attention"]
    assert exp_lm._color("lstm") == PALETTE["extra2"]
    assert exp_lm._color("mamba") == PALETTE["state"]
    assert exp_lm._color("gpt_nanogpt_lr") == PALETTE["theory"]


# --- ntm_copy: the NTM against an LSTM on the copy task -----------------------------------------

from sseq.experiments import ntm_copy  # noqa: E402
from sseq.memory_aug import copy_accuracy, copy_loss, copy_task  # noqa: E402
from sseq.memory_aug.ntm_model import NTM  # noqa: E402

COPY = ntm_copy.Config(n_bits=3, train_length=3, eval_lengths=(2, 4), d_controller=8, n_slots=4,
                       slot_width=3, steps=4, lstm_steps=2, batch_size=4, lr=1e-2, lstm_lr=2e-2,
                       clip=0.05, eval_every=2, n_eval=5, models=("ntm", "lstm"))


def test_ntm_copy_defaults_are_the_documented_full_run():
    """The full run is the docstring's: 8-bit vectors, strings of 1..10 in training and up to
    30 in evaluation, an NTM of 32 slots of width 12 trained 2,000 steps, the LSTM 10,000,
    gradients clipped at norm 10; the prefix test re-runs the first record (250 steps)."""
    c = ntm_copy.Config()
    assert (c.n_bits, c.train_length, c.eval_lengths) == (8, 10, (1, 2, 5, 10, 15, 20, 25, 30))
    assert (c.d_controller, c.n_slots, c.slot_width) == (64, 32, 12)
    assert (c.steps, c.lstm_steps, c.batch_size, c.lr, c.lstm_lr, c.clip) == (
        2000, 10000, 32, 1e-3, 3e-3, 10.0)
    assert (c.eval_every, c.n_eval, c.models) == (250, 128, ("ntm", "lstm"))
    assert ntm_copy.PREFIX_STEPS == c.eval_every and ntm_copy.RECORDS == ("step", "loss",
                                                                           "eval_bits")
    q = ntm_copy.QUICK
    assert (q.steps, q.lstm_steps, q.eval_every, q.n_eval, q.eval_lengths) == (
        300, 300, 100, 32, (5, 10, 20))


def test_copy_lstm_is_a_batch_first_lstm_and_a_linear_read_out():
    """``CopyLSTM(d_in, d_out, d)``: an LSTM of width d over ``(b, l, d_in)`` and a linear map
    of each state to ``d_out`` logits; checked against torch's sequence-first LSTM with the
    same weights, on a batch whose size differs from its length."""
    torch.manual_seed(0)
    model = ntm_copy.CopyLSTM(4, 3, 5)
    assert ntm_copy.count_parameters(model) == 4 * 5 * (4 + 5 + 2) + 5 * 3 + 3
    x = torch.randn(2, 7, 4)
    ref = torch.nn.LSTM(4, 5)
    ref.load_state_dict(model.lstm.state_dict())
    h = ref(x.transpose(0, 1))[0].transpose(0, 1)                       # (b, l, d)
    want = h @ model.output.weight.T + model.output.bias
    got = model(x)
    assert got.shape == (2, 7, 3)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


def test_count_parameters_counts_every_weight():
    """``count_parameters``: the number of trainable numbers, e.g. 3·2 + 2 for Linear(3, 2)."""
    assert ntm_copy.count_parameters(torch.nn.Linear(3, 2)) == 8
    assert ntm_copy.count_parameters(torch.nn.Sequential(torch.nn.Linear(3, 2),
                                                         torch.nn.Linear(2, 5))) == 8 + 15


def test_ntm_copy_lstm_width_is_the_nearest_parameter_match():
    """``lstm_width``: among LSTM widths, the one whose CopyLSTM (counted by building it) has
    the parameter count nearest the NTM's, however large the NTM (a search once stopped at
    width 511)."""
    big = ntm_copy.Config(d_controller=600, n_slots=4, slot_width=4)  # 1.5 M: width 605
    for config in (COPY, ntm_copy.Config(), big):
        target = ntm_copy.count_parameters(NTM(config.n_bits + 1, config.n_bits,
                                               config.d_controller, config.n_slots,
                                               config.slot_width))
        d = ntm_copy.lstm_width(config)

        def gap(w, config=config, target=target):
            return abs(ntm_copy.count_parameters(
                ntm_copy.CopyLSTM(config.n_bits + 1, config.n_bits, w)) - target)

        assert all(gap(d) <= gap(w) for w in range(max(1, d - 3), d + 4))
        assert gap(d) < gap(d - 1) and gap(d) < gap(d + 1)
    # wide vectors, a one-unit controller: an NTM of 752 parameters, nearest the LSTM of
    # width 1 (616) rather than 2 (1,140)
    wide = ntm_copy.Config(n_bits=100, d_controller=1, n_slots=1, slot_width=1)
    assert ntm_copy.count_parameters(ntm_copy.build(wide, "ntm", 0)) == 752
    assert ntm_copy.lstm_width(wide) == 1
    assert ntm_copy.count_parameters(ntm_copy.CopyLSTM(101, 100, 1)) == 616


def test_ntm_copy_build_seeds_each_model():
    """``build``: the NTM of the config's sizes (one input more than the bits: the delimiter),
    or the CopyLSTM of :func:`lstm_width`, each initialised as seeding with the run's seed
    right before making it would; an unknown model is refused by name."""
    net = ntm_copy.build(COPY, "ntm", 3)
    torch.manual_seed(3)
    assert _same_parameters(net, NTM(4, 3, 8, 4, 3))
    assert net.config == NTM(4, 3, 8, 4, 3).config
    width = ntm_copy.lstm_width(COPY)
    for seed in (0, 3):
        net = ntm_copy.build(COPY, "lstm", seed)
        torch.manual_seed(seed)
        assert _same_parameters(net, ntm_copy.CopyLSTM(4, 3, width))
    with pytest.raises(ValueError) as err:
        ntm_copy.build(COPY, "gru", 0)
    assert str(err.value) == "model must be 'ntm' or 'lstm', got 'gru'"
    assert ntm_copy.jobs(COPY, [0, 5]) == [{"model": "ntm", "seed": 0}, {"model": "ntm", "seed": 5},
                                           {"model": "lstm", "seed": 0},
                                           {"model": "lstm", "seed": 5}]


def _copier(wrong_first_bit: bool):
    """A model that writes the string back after the delimiter (optionally with the first
    bit of the first string flipped): logits ±1."""

    def model(x):
        n, steps, _ = x.shape
        length = (steps - 1) // 2
        out = torch.zeros(n, steps, x.shape[-1] - 1)
        out[:, length + 1:] = 2 * x[:, :length, :-1] - 1
        if wrong_first_bit:
            out[0, length + 1, 0] *= -1
        return out

    return model


def test_ntm_copy_evaluate_scores_held_out_strings_of_a_length():
    """``evaluate``: bit and string accuracy on the config's ``n_eval`` strings of that
    length, drawn with seed 1000 + length (the same for every run)."""
    assert ntm_copy.evaluate(_copier(False), COPY, 4) == {"bits": 1.0, "sequences": 1.0}
    got = ntm_copy.evaluate(_copier(True), COPY, 4)
    assert got["bits"] == pytest.approx(1 - 1 / (5 * 4 * 3), abs=1e-6)  # float32 means
    assert got["sequences"] == pytest.approx(0.8, abs=1e-6)
    _, y, mask = copy_task(5, 4, 3, seed=1004)
    ones = ntm_copy.evaluate(lambda x: torch.ones(x.shape[0], x.shape[1], 3), COPY, 4)
    assert ones["bits"] == pytest.approx(float(y[:, mask].mean()))


def _train_by_hand(config, model_name, seed, steps):
    """The documented recipe written out: Adam at the model's lr, a length drawn uniformly
    from 1..train_length at every step (generator 10000 + seed), gradients clipped."""
    torch.manual_seed(seed)
    if model_name == "ntm":
        net = NTM(config.n_bits + 1, config.n_bits, config.d_controller, config.n_slots,
                  config.slot_width)
        lr = config.lr
    else:
        net = ntm_copy.build(config, "lstm", seed)
        lr = config.lstm_lr
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    g = torch.Generator().manual_seed(10_000 + seed)
    losses, records = [], {"step": [], "loss": [], "eval_bits": []}
    for step in range(1, steps + 1):
        length = int(torch.randint(1, config.train_length + 1, (1,), generator=g))
        x, y, mask = copy_task(config.batch_size, length, config.n_bits, seed=g)
        loss = copy_loss(net(x), y, mask)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), config.clip)
        opt.step()
        losses.append(loss.item())
        if step % config.eval_every == 0:
            x, y, mask = copy_task(config.n_eval, config.train_length, config.n_bits,
                                   seed=1000 + config.train_length)
            with torch.no_grad():
                acc = copy_accuracy(net(x), y, mask)
            records["step"].append(step)
            records["loss"].append(sum(losses) / len(losses))
            records["eval_bits"].append(acc["bits"])
            losses = []
    return net, records


def test_ntm_copy_run_job_is_the_documented_training_loop(tmp_path, monkeypatch):
    """``run_job``: the log of a tiny NTM and LSTM run equals the training loop written out
    by hand (records every ``eval_every`` steps, the loss averaged since the last record, the
    bits at ``train_length``), then the accuracy at each evaluated length and the parameters;
    a prefix (``steps``) stops early and adds neither; no checkpoint but the full run's."""
    monkeypatch.setattr(ntm_copy, "CHECKPOINTS", tmp_path / "ckpt")
    logs = {}
    for name, steps in (("ntm", 4), ("lstm", 2)):
        log = ntm_copy.run_job(COPY, {"model": name, "seed": 1})
        net, want = _train_by_hand(COPY, name, 1, steps)
        logs[name] = log
        assert log["step"] == want["step"] == [2, 4][:steps // 2]
        assert log["loss"] == pytest.approx(want["loss"], rel=1e-5, abs=1e-7), name
        assert log["eval_bits"] == pytest.approx(want["eval_bits"], abs=1e-6), name
        with torch.no_grad():
            final = [copy_accuracy(net(x), y, m) for x, y, m in
                     (copy_task(5, n, 3, seed=1000 + n) for n in (2, 4))]
        assert log["bits"] == pytest.approx([f["bits"] for f in final], abs=1e-6)
        assert log["sequences"] == pytest.approx([f["sequences"] for f in final], abs=1e-6)
        assert log["parameters"] == ntm_copy.count_parameters(net)
    prefix = ntm_copy.run_job(COPY, {"model": "ntm", "seed": 1}, steps=3)
    assert set(prefix) == {"step", "loss", "eval_bits"} and prefix["step"] == [2]
    assert prefix["loss"] == logs["ntm"]["loss"][:1]
    assert not (tmp_path / "ckpt").exists()


class _NotWeights:
    """An object a weights-only checkpoint may not hold."""


def test_ntm_copy_saves_and_loads_the_full_runs_seed_0_models(tmp_path, monkeypatch):
    """The full configuration's seed-0 run of each model writes its weights to
    ``CHECKPOINTS/<model>_copy.pt`` (creating the folder, again on a re-run), which
    ``load_trained`` reads back into the full-size model, in eval mode; other seeds write
    nothing, a file holding anything but tensors is refused (loading cannot run code), and a
    missing file says which command makes it."""
    monkeypatch.setattr(ntm_copy, "CHECKPOINTS", tmp_path / "ckpt")
    monkeypatch.setattr(ntm_copy, "Config", lambda: COPY)  # COPY plays the full run
    ntm_copy.run_job(COPY, {"model": "lstm", "seed": 1})
    assert not (tmp_path / "ckpt").exists()
    for _ in range(2):
        ntm_copy.run_job(COPY, {"model": "lstm", "seed": 0})
    net, _ = _train_by_hand(COPY, "lstm", 0, 2)
    stored = torch.load(tmp_path / "ckpt" / "lstm_copy.pt", weights_only=True)
    assert stored.keys() == net.state_dict().keys()
    for key, value in net.state_dict().items():
        torch.testing.assert_close(stored[key], value, rtol=1e-5, atol=1e-6)
    loaded = ntm_copy.load_trained("lstm")
    assert not loaded.training
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, stored[key]), key
    torch.save({"not": _NotWeights()}, tmp_path / "ckpt" / "lstm_copy.pt")
    with pytest.raises(pickle.UnpicklingError):  # weights only: a file cannot run code
        ntm_copy.load_trained("lstm")
    path = tmp_path / "ckpt" / "ntm_copy.pt"
    with pytest.raises(FileNotFoundError) as err:
        ntm_copy.load_trained("ntm")
    assert str(err.value) == (f"no trained 'ntm' at {path}: run 'python -m sseq.experiments "
                              f"ntm_copy' first")


def test_ntm_copy_summarize_averages_each_model_over_seeds():
    """``summarize``: per model, the parameters and steps of its runs and, at each evaluated
    length, the mean over seeds of the bit and the string accuracy."""
    def run(model, seed, bits, seqs, params, last):
        return {"model": model, "seed": seed,
                "log": {"bits": bits, "sequences": seqs, "parameters": params,
                        "step": [0, last]}}

    runs = [run("ntm", 0, [1.0, 0.5], [1.0, 0.0], 90, 6), run("lstm", 0, [0.9, 0.3],
                                                               [0.5, 0.0], 88, 4),
            run("ntm", 1, [0.8, 0.25], [0.5, 0.25], 90, 6)]
    for r in runs:  # three records: the last step is not the second
        r["log"]["step"].insert(1, 1)
    got = ntm_copy.summarize(COPY, runs)
    assert got == {"ntm": {"parameters": 90, "steps": 6, "eval_lengths": [2, 4],
                           "bits": [0.9, 0.375], "sequences": [0.75, 0.125]},
                   "lstm": {"parameters": 88, "steps": 4, "eval_lengths": [2, 4],
                            "bits": [0.9, 0.3], "sequences": [0.5, 0.0]}}
    with pytest.raises(ValueError):  # seeds evaluated at different lengths
        ntm_copy.summarize(COPY, runs[:2] + [run("ntm", 1, [0.8], [0.5], 90, 6)])


def _copy_results():
    runs = [{"model": "ntm", "seed": 0, "log": {"bits": [1.0, 0.6], "sequences": [1.0, 0.2]}},
            {"model": "ntm", "seed": 1, "log": {"bits": [0.8, 0.4], "sequences": [0.5, 0.0]}},
            {"model": "lstm", "seed": 0, "log": {"bits": [0.9, 0.3], "sequences": [0.4, 0.0]}},
            {"model": "lstm", "seed": 1, "log": {"bits": [0.7, 0.5], "sequences": [0.2, 0.1]}}]
    return {"config": {"eval_lengths": [2, 4], "models": ["ntm", "lstm"], "train_length": 3},
            "runs": runs}


def test_ntm_copy_plot_shows_the_mean_and_range_over_seeds():
    """``plot_accuracy``: per model the mean accuracy over seeds against length, in the
    family's colour, the seeds' range shaded, the training lengths marked, and the axes named
    for the accuracy shown."""
    for key, ylabel in (("bits", "bits copied right"),
                        ("sequences", "strings copied without error")):
        fig, ax = plt.subplots()
        results = _copy_results()
        assert ntm_copy.plot_accuracy(ax, results, key) is ax
        lines = ax.get_lines()
        assert [line.get_label() for line in lines] == ["NTM (32 slots × 12)",
                                                       "LSTM, same parameters"]
        runs = results["runs"]
        for line, pair in zip(lines, (runs[:2], runs[2:]), strict=True):
            assert list(line.get_xdata()) == [2, 4]
            want = [(a + b) / 2 for a, b in zip(pair[0]["log"][key], pair[1]["log"][key],
                                                 strict=True)]
            assert list(line.get_ydata()) == pytest.approx(want)
            assert line.get_marker() == "o" and line.get_linestyle() == "-"
        assert [line.get_color() for line in lines] == [PALETTE["state"], PALETTE["theory"]]
        bands = ax.collections
        assert len(bands) == 2
        for band, pair in zip(bands, (runs[:2], runs[2:]), strict=True):
            verts = band.get_paths()[0].vertices
            lo = [min(a, b) for a, b in zip(pair[0]["log"][key], pair[1]["log"][key],
                                            strict=True)]
            hi = [max(a, b) for a, b in zip(pair[0]["log"][key], pair[1]["log"][key],
                                            strict=True)]
            assert {tuple(v) for v in verts} >= {(2, lo[0]), (4, lo[1]), (2, hi[0]), (4, hi[1])}
            assert band.get_alpha() == 0.2 and list(band.get_linewidth()) == [0.0]
        span = ax.patches[0]
        assert span.get_label() == "lengths seen in training"
        corners = span.get_patch_transform().transform(span.get_path().vertices)[:, 0]
        assert (min(corners), max(corners)) == (0.5, 3.5)
        assert span.get_alpha() == 0.1 and span.get_linewidth() == 0.0
        assert span.get_facecolor()[:3] == matplotlib.colors.to_rgb(PALETTE["reference"])
        assert ax.get_ylim() == (0, 1.02) and ax.get_ylabel() == ylabel
        assert ax.get_xlabel() == "string length (8-bit vectors)"
        assert ax.get_title() == "Copying: external memory against a running state"
        plt.close(fig)


def test_ntm_copy_plot_can_draw_each_seed_of_a_model():
    """``plot_accuracy(seeds=(model,))``: that model's runs as one line each, labelled with
    the seed, in its colour with its own marker and dash; the others as a mean."""
    fig, ax = plt.subplots()
    results = _copy_results()
    ntm_copy.plot_accuracy(ax, results, "bits", seeds=("ntm",))
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["NTM (32 slots × 12), seed 0",
                                                   "NTM (32 slots × 12), seed 1",
                                                   "LSTM, same parameters"]
    assert [list(line.get_ydata()) for line in lines[:2]] == [[1.0, 0.6], [0.8, 0.4]]
    assert [(line.get_marker(), line.get_linestyle()) for line in lines[:2]] == [
        ("o", "-"), ("s", "--")]
    assert lines[0].get_color() == PALETTE["state"] and lines[0].get_markersize() == 4
    assert len(ax.collections) == 1  # only the LSTM's range
    plt.close(fig)


# --- knn_lm: Chapter 7's GPT with its training text as a datastore ------------------------------

from sseq.experiments import knn_lm as exp_knn  # noqa: E402

KNN = exp_knn.Config(context=4, n_val=6, sizes=(5, 9), k=2, temperatures=(0.5, 2.0),
                     subset_seed=3, lambdas=(0.0, 0.25, 1.0))


def test_knn_lm_defaults_are_the_documented_full_run():
    """The full run is the docstring's: the GPT, windows of 64, 8,192 validation queries,
    datastores from 3,000 characters to the whole training text, k = 32, λ from 0 (the GPT
    alone) to 1, one shuffle (seed 0); the prefix re-runs the smallest datastore."""
    c = exp_knn.Config()
    assert (c.model, c.context, c.n_val, c.k, c.subset_seed) == ("gpt", 64, 8192, 32, 0)
    assert c.sizes == (3_000, 10_000, 30_000, 100_000, 300_000, 1_003_840)
    assert c.sizes[-1] == (1_003_854 - 1) // 64 * 64  # every whole training window
    assert c.temperatures == (0.3, 1.0, 3.0, 10.0, 30.0)
    assert c.lambdas[0] == 0.0 and c.lambdas[-1] == 1.0 and len(c.lambdas) == 12
    assert exp_knn.QUICK == exp_knn.Config(n_val=1024, sizes=(3_000, 30_000))
    assert exp_knn.PREFIX_STEPS == 1 and exp_knn.RECORDS == ("size", "tune", "test")


def test_knn_lm_is_one_job_whatever_the_seeds():
    """``jobs``: the search is exact and the model trained, so one run, for the config's
    model, however many seeds are asked for."""
    assert exp_knn.jobs(KNN, [0, 1, 2]) == [{"model": "gpt"}]
    assert exp_knn.jobs(dataclasses.replace(KNN, model="lstm"), [4]) == [{"model": "lstm"}]


def _knn_loss_by_hand(distances, values, logits, targets, T, lam):
    """Mean −log((1 − λ) softmax(logits)[y] + λ Σ_i 1[v_i = y] e^{−d_i/T} / Σ_i e^{−d_i/T}),
    one query at a time in float64."""
    total = 0.0
    for q in range(len(targets)):
        y = int(targets[q])
        z = [math.exp(float(s)) for s in logits[q]]
        p_lm = z[y] / sum(z)
        w = [math.exp(-float(d) / T) for d in distances[q]]
        p_knn = sum(wi for wi, v in zip(w, values[q].tolist(), strict=True) if v == y) / sum(w)
        p = (1 - lam) * p_lm + lam * p_knn
        total += -math.log(p) if p > 0 else math.inf
    return total / len(targets)


def test_knn_lm_losses_are_a_grid_over_temperature_and_lambda():
    """``_losses``: rows are the temperatures, columns the λs, each the mean next-character
    loss (nats) of the interpolated distribution, matching the formula evaluated by hand;
    λ = 1 with a target no neighbour voted for is an infinite loss."""
    distances = torch.tensor([[0.5, 1.5], [0.2, 0.3], [1.0, 4.0]], dtype=torch.float64)
    values = torch.tensor([[1, 2], [0, 0], [2, 1]])
    logits = torch.tensor([[0.1, 0.5, -0.3, 0.0], [1.0, 0.0, 0.2, -1.0], [0.3, 0.3, 0.9, 0.4]])
    targets = torch.tensor([2, 0, 1])  # 3 queries, 4 characters
    grid = exp_knn._losses(KNN, distances, values, logits, targets)
    assert len(grid) == 2 and all(len(row) == 3 for row in grid)
    for i, T in enumerate(KNN.temperatures):
        for j, lam in enumerate(KNN.lambdas):
            want = _knn_loss_by_hand(distances, values, logits, targets, T, lam)
            assert grid[i][j] == pytest.approx(want, rel=1e-6), (T, lam)
            assert isinstance(grid[i][j], float)
    assert grid[0][0] == grid[1][0]  # λ = 0: the GPT alone, whatever T
    missing = exp_knn._losses(KNN, distances, torch.tensor([[1, 2], [1, 1], [2, 1]]), logits,
                              targets)
    assert missing[0][2] == math.inf and math.isfinite(missing[0][1])


def test_knn_lm_windows_are_a_seeded_shuffle_cut_to_the_size():
    """``_windows``: the whole windows of ``context`` characters that fit before the last
    target, shuffled by ``subset_seed``, and as many of them as hold ``size`` positions
    (rounded up): nested, so a larger datastore holds the smaller ones."""
    n_train = 4 * 10 + 1            # 10 whole windows of 4 with a target after each position
    order = torch.randperm(10, generator=torch.Generator().manual_seed(3))
    assert torch.equal(exp_knn._windows(KNN, n_train, 5), order[:2])      # 5 → 2 windows
    assert torch.equal(exp_knn._windows(KNN, n_train, 8), order[:2])      # exactly 2
    assert torch.equal(exp_knn._windows(KNN, n_train, 9), order[:3])
    assert torch.equal(exp_knn._windows(KNN, n_train, 40), order)
    nine = torch.randperm(9, generator=torch.Generator().manual_seed(3))  # one target short
    assert torch.equal(exp_knn._windows(KNN, n_train - 1, 40), nine)
    other = exp_knn._windows(dataclasses.replace(KNN, subset_seed=4), n_train, 40)
    assert not torch.equal(other, order) and sorted(other.tolist()) == list(range(10))


def test_knn_lm_best_is_the_grids_smallest_loss():
    """``best``: the (temperature, λ) indices of the smallest loss; on a tie the first in
    reading order."""
    assert exp_knn.best(KNN, [[3.0, 2.0, 2.5], [2.1, 1.5, math.inf]]) == (1, 1)
    assert exp_knn.best(KNN, [[3.0, 1.0, 2.5], [1.0, 1.5, 4.0]]) == (0, 1)
    assert exp_knn.best(KNN, [[0.5, 1.0], [2.0, 0.7]]) == (0, 0)


def _knn_results():
    tune = [[[2.0, 1.8, 3.0], [2.0, 1.9, 2.5]], [[2.0, 1.7, 2.6], [2.0, 1.6, 2.4]]]
    test = [[[2.1, 1.85, 3.1], [2.12, 1.95, 2.6]], [[2.15, 1.75, 2.7], [2.17, 1.65, 2.5]]]
    log = {"size": [5, 9], "tune": tune, "test": test}
    return {"config": dataclasses.asdict(KNN), "runs": [{"log": log}]}


def test_knn_lm_summary_reports_the_test_loss_at_the_tuned_t_and_lambda():
    """``summarize``: per datastore size, T and λ chosen on the tune half and the test half's
    loss with them (not the test half's own minimum), beside the GPT alone (λ = 0)."""
    results = _knn_results()
    got = exp_knn.summarize(KNN, results["runs"])
    assert got == {"size": [5, 9], "temperature": [0.5, 2.0], "lambda": [0.25, 0.25],
                   "test_loss": [1.85, 1.65], "test_loss_lm": 2.1}
    shifted = dataclasses.replace(KNN, lambdas=(0.25, 0.0, 1.0))  # λ = 0 in the middle column
    assert exp_knn.summarize(shifted, results["runs"])["test_loss_lm"] == 1.85


def test_knn_lm_summary_refuses_tune_and_test_grids_that_disagree():
    """``summarize`` pairs the tune and test grid of each size; a log with one more tune than
    test grid is refused, not cut short."""
    results = _knn_results()
    results["runs"][0]["log"]["test"].pop()
    with pytest.raises(ValueError):
        exp_knn.summarize(KNN, results["runs"])


def test_knn_lm_plot_size_draws_the_test_loss_and_the_gpt_alone():
    """``plot_size``: the test loss against datastore size on a log axis, and the GPT alone as
    a dashed black line."""
    results = _knn_results()
    results["summary"] = exp_knn.summarize(KNN, results["runs"])
    fig, ax = plt.subplots()
    assert exp_knn.plot_size(ax, results) is ax
    curve, alone = ax.get_lines()
    assert list(curve.get_xdata()) == [5, 9] and list(curve.get_ydata()) == [1.85, 1.65]
    assert curve.get_color() == PALETTE["attention"] and curve.get_marker() == "o"
    assert curve.get_label() == "GPT + kNN (T, λ tuned on the other half)"
    assert list(alone.get_ydata()) == [2.1, 2.1] and alone.get_label() == "GPT alone"
    assert alone.get_linestyle() == "--" and alone.get_color() == PALETTE["reference"]
    assert ax.get_xscale() == "log"
    assert ax.get_xlabel() == "datastore size N (training characters)"
    assert ax.get_ylabel() == "validation loss (nats/char)"
    assert ax.get_title() == "More memory, lower loss"
    plt.close(fig)


def test_knn_lm_plot_lambda_draws_each_size_at_its_tuned_temperature():
    """``plot_lambda``: per datastore size (all, or those asked for), the test loss against λ
    at the temperature tuned for that size, coloured along viridis, labelled with N; the
    y axis ends 0.3 above the GPT alone."""
    results = _knn_results()
    results["summary"] = exp_knn.summarize(KNN, results["runs"])
    fig, ax = plt.subplots()
    assert exp_knn.plot_lambda(ax, results) is ax
    first, second = ax.get_lines()
    assert list(first.get_xdata()) == [0.0, 0.25, 1.0]
    assert list(first.get_ydata()) == [2.1, 1.85, 3.1]      # T = 0.5, tuned for size 5
    assert list(second.get_ydata()) == [2.17, 1.65, 2.5]    # T = 2.0, tuned for size 9
    assert [first.get_label(), second.get_label()] == ["N = 5", "N = 9"]
    cmap = matplotlib.colormaps["viridis"]
    assert first.get_color() == cmap(0.0) and second.get_color() == cmap(1.0)
    assert ax.get_ylim()[1] == pytest.approx(2.4)
    assert ax.get_xlabel() == "interpolation weight λ"
    assert ax.get_ylabel() == "validation loss (nats/char)"
    assert ax.get_title() == "How much to trust the neighbours"
    plt.close(fig)
    results["runs"][0]["log"]["size"] = [1_000, 9]
    fig, ax = plt.subplots()
    exp_knn.plot_lambda(ax, results)
    assert [line.get_label() for line in ax.get_lines()] == ["N = 1,000", "N = 9"]
    plt.close(fig)
    fig, ax = plt.subplots()
    exp_knn.plot_lambda(ax, results, sizes=[9])  # only the larger: the smaller is skipped
    (only,) = ax.get_lines()
    assert only.get_label() == "N = 9" and list(only.get_ydata()) == [2.17, 1.65, 2.5]
    plt.close(fig)


def test_knn_lm_plot_lambda_spreads_the_sizes_it_shows_over_viridis():
    """``plot_lambda`` colours the curves it draws from one end of viridis to the other, by
    their order among the sizes shown: three sizes get 0, 1/2 and 1; the last two of three
    get 0 and 1 (indexing by the position in the log would send the second past the end of
    the map, where every curve gets the same colour)."""
    results = _knn_results()
    log = results["runs"][0]["log"]
    log["size"].append(12)
    log["tune"].append(log["tune"][1])
    log["test"].append(log["test"][1])
    results["summary"] = exp_knn.summarize(KNN, results["runs"])
    cmap = matplotlib.colormaps["viridis"]
    for sizes, want in ((None, [0.0, 0.5, 1.0]), ([9, 12], [0.0, 1.0])):
        fig, ax = plt.subplots()
        exp_knn.plot_lambda(ax, results, sizes=sizes)
        assert [line.get_color() for line in ax.get_lines()] == [cmap(x) for x in want]
        plt.close(fig)


def test_ntm_copy_plot_draws_bits_by_default_and_up_to_four_seeds_against_length():
    """``plot_accuracy`` shows bit accuracy unless told otherwise; drawn seed by seed, each of
    up to four seeds gets its own marker and dash, plotted against the evaluated lengths, and
    every model's band of seeds is shaded in its colour."""
    fig, ax = plt.subplots()
    results = _copy_results()
    runs = [{"model": "ntm", "seed": s, "log": {"bits": [0.1 * s, 0.2 * s]}} for s in range(4)]
    results["runs"] = runs + [r for r in results["runs"] if r["model"] == "lstm"]
    ntm_copy.plot_accuracy(ax, results, seeds=("ntm",))
    lines = ax.get_lines()
    assert [(line.get_marker(), line.get_linestyle()) for line in lines[:4]] == [
        ("o", "-"), ("s", "--"), ("^", ":"), ("d", "-.")]
    for line, run in zip(lines[:4], runs, strict=True):
        assert list(line.get_xdata()) == [2, 4]
        assert list(line.get_ydata()) == run["log"]["bits"]
    assert ax.get_ylabel() == "bits copied right"
    band, = ax.collections
    assert matplotlib.colors.to_rgb(band.get_facecolor()[0][:3]) == \
        matplotlib.colors.to_rgb(PALETTE["theory"])
    plt.close(fig)
