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
            "log": {"final_val_loss": val, "seconds": [1.0, seconds],
                    "cpu_seconds": [0.5, cpu], "parameters": params, "flops": [7, flops]}}


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
    assert list(runs[0].get_xdata()) == pytest.approx([1.0, 3.0])
    assert list(runs[1].get_xdata()) == pytest.approx([0.5, 1.5])  # seed 1: the first stored
    assert list(runs[1].get_ydata()) == [6.0, 4.0]
    assert [line.get_color() for line in runs] == [PALETTE["attention"], PALETTE["extra2"],
                                                  PALETTE["theory"]]
    assert [line.get_linestyle() for line in runs] == ["-", "-", "--"]
    refs = lines[3:]
    assert [line.get_label() for line in refs] == ["Kneser–Ney 2-gram", "Kneser–Ney 5-gram",
                                                  "Kneser–Ney 6-gram"]
    assert [line.get_ydata()[0] for line in refs] == [2.5, 1.95, 1.9]
    assert [line.get_linestyle() for line in refs] == [":", "--", "-."]
    assert refs[1]._dash_pattern[1] == pytest.approx([5 * 0.9, 3 * 0.9])  # (0, (5, 3)), scaled
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


def test_lm_colours_are_the_book_palettes_families():
    """Each run label has its family's colour: attention for the GPTs' own, state for Mamba."""
    assert exp_lm._color("gpt") == PALETTE["attention"]
    assert exp_lm._color("lstm") == PALETTE["extra2"]
    assert exp_lm._color("mamba") == PALETTE["state"]
    assert exp_lm._color("gpt_nanogpt_lr") == PALETTE["theory"]
