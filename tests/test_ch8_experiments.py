"""Chapter 8's stored experiments (copying, MQAR, induction heads): each is the full
configuration, its summary is computed from its logs, and a short prefix re-run now
reproduces the stored log."""

from __future__ import annotations

import dataclasses
import json

import pytest

from sseq import experiments
from sseq.experiments import copying, induction, mqar, mqar_long

MODULES = {"copying": copying, "mqar": mqar, "mqar_long": mqar_long, "induction": induction}


@pytest.fixture(scope="module", params=sorted(MODULES))
def stored(request):
    return request.param, experiments.load(request.param)


def test_the_stored_run_is_the_full_configuration(stored):
    name, results = stored
    module = MODULES[name]
    config = module.Config()
    assert results["config"] == json.loads(json.dumps(dataclasses.asdict(config)))
    assert not results["quick"] and len(results["seeds"]) >= 3
    assert len(results["runs"]) == len(module.jobs(config, results["seeds"]))
    for run in results["runs"]:
        assert run["log"]["step"][-1] == config.steps
        if "length_acc" in run["log"]:
            assert len(run["log"]["length_acc"]) == len(config.test_lengths)


def test_a_prefix_of_the_stored_run_reproduces_its_log(stored):
    name, results = stored
    out = experiments.prefix(name)
    assert out["rerun"]["step"] == out["stored"]["step"] == [MODULES[name].PREFIX_STEPS]
    # float32 training: another CPU may round the last digit of a loss differently
    for key in MODULES[name].RECORDS[1:]:
        for got, want in zip(out["rerun"][key], out["stored"][key], strict=True):
            assert got == pytest.approx(want, rel=2e-3, abs=4 / 256), key


def test_the_summary_is_computed_from_the_logs(stored):
    name, results = stored
    config = MODULES[name].Config(**{k: tuple(v) if isinstance(v, list) else v
                                     for k, v in results["config"].items()})
    again = experiments.round_floats(MODULES[name].summarize(config, results["runs"]))
    # the stored logs are rounded to 4 digits: a mean of them may differ in the last one
    assert _flat(again) == pytest.approx(_flat(results["summary"]), rel=1e-3)


def _flat(obj, key=""):
    """{path: number} of a nested summary, so that it can be compared with a tolerance."""
    if isinstance(obj, dict):
        return {k: v for name, sub in obj.items() for k, v in _flat(sub, f"{key}/{name}").items()}
    if isinstance(obj, list):
        return {k: v for i, sub in enumerate(obj) for k, v in _flat(sub, f"{key}[{i}]").items()}
    return {key: obj}


def test_the_training_loop_is_deterministic_and_learns():
    from functools import partial

    from sseq import models, recall_tasks
    from sseq.experiments.recall import train_on_task

    sample = partial(recall_tasks.copying, length=3, n_symbols=4)
    eval_set = sample(64, seed=1)
    logs = [train_on_task(models.build("transformer", 8, d_model=16, seed=0),
                          lambda n, g: sample(n, seed=g), eval_set, steps=60, batch_size=16,
                          lr=1e-2, seed=0, eval_every=20) for _ in range(2)]
    assert logs[0] == logs[1]
    assert logs[0]["step"] == [20, 40, 60] and logs[0]["examples"] == [320, 640, 960]
    assert logs[0]["loss"][-1] < 0.5 * logs[0]["loss"][0]


def test_the_ledger_reads_every_stored_experiment():
    from sseq.experiments import ledger

    runs = {name: experiments.load(name) for name in MODULES}
    rows = ledger.rows(runs, {f: 1000 * i for i, f in enumerate(ledger.FAMILIES)})
    assert [r["model"] for r in rows] == [copying.LABELS[f] for f in ledger.FAMILIES]
    by_family = dict(zip(ledger.FAMILIES, rows, strict=True))
    mqar_column = "MQAR 4 pairs (long run, 48,000 seq.)"  # the long run's point, labelled so
    assert by_family["lstm"][mqar_column] == "—"  # not run: said, not invented
    stored_mqar = runs["mqar_long"]["summary"]["mamba"]["pairs=4,width=32"]["best"]["mean"]
    assert by_family["mamba"][mqar_column] == f"{stored_mqar:.0%}"
    params = runs["copying"]["summary"]["mamba"]["parameters"]
    assert by_family["mamba"]["parameters (copying model)"] == f"{params:,}"
    assert by_family["mamba"]["numbers carried"] == "1,000"
    stored = runs["copying"]["summary"]["hybrid"]["mean_seq_acc"]
    assert by_family["hybrid"]["copy ≤ 16"] == f"{stored:.0%}"


def test_the_mqar_table_prints_each_models_parameters():
    from sseq import models as m

    results = experiments.load("mqar")
    rows = mqar.lr_table(results)
    config = mqar.Config(**{k: tuple(v) if isinstance(v, list) else v
                            for k, v in results["config"].items()})
    for row in rows:
        family = {v: k for k, v in mqar.LABELS.items()}[row["model"]]
        built = mqar.build(config, family, row["width"], 0)
        assert row["parameters"] == f"{m.count_parameters(built):,}"
    widths = {r["parameters"] for r in rows if r["model"] == "Mamba"}
    assert len(widths) == len(results["config"]["widths"])  # width changes the parameters too


def _ledger_runs():
    """Made-up stored results whose every number is distinct, so each cell shows where it came
    from: copying tested at lengths 8..64 (trained up to 16), the long MQAR run at 4 pairs and
    width 32 beside a decoy point (another pair count), induction trained at 64 (not the first
    test length) and tested up to 256; LSTM has no MQAR or induction run, Hybrid no MQAR run."""
    fams = ("transformer", "mamba", "lstm", "hybrid")
    copy = {f: {"parameters": 10_000 * (i + 1) + 234, "mean_seq_acc": 0.11 * (i + 1),
                "length_mean": [0.9 - 0.1 * i, 0.8 - 0.1 * i, 0.31 + 0.01 * i, 0.05 * i]}
            for i, f in enumerate(fams)}
    mqar = {f: {"pairs=4,width=32": {"best": {"mean": 0.70 + 0.1 * i}},
                "pairs=8,width=32": {"best": {"mean": 0.01}}}
            for i, f in enumerate(("transformer", "mamba"))}
    ind = {f: {"length_mean": [0.5 + 0.1 * i, 0.95 - 0.1 * i, 0.4, 0.123 + 0.1 * i]}
           for i, f in enumerate(("transformer", "mamba", "hybrid"))}
    return {"copying": {"config": {"train_length": 16, "test_lengths": [8, 16, 32, 64]},
                        "summary": copy},
            "mqar_long": {"config": {"width_pairs": 4, "d_model": 32, "steps": 1500,
                                     "batch_size": 32}, "summary": mqar},
            "induction": {"config": {"train_length": 64, "test_lengths": [32, 64, 128, 256]},
                          "summary": ind}}


def test_the_ledger_rows_cell_by_cell():
    """Each cell of chapter 8's ledger comes from the right experiment, family, point and test
    length, formatted as the chapter prints it (thousands separated, whole percents), with "—"
    for a family an experiment did not run: checked against rows written out by hand."""
    from sseq.experiments import ledger

    assert ledger.FAMILIES == ("transformer", "mamba", "lstm", "hybrid")
    rows = ledger.rows(_ledger_runs(), {"transformer": 123456, "mamba": 2048, "lstm": 512,
                                        "hybrid": 1_000_000})
    mqar = "MQAR 4 pairs (long run, 48,000 seq.)"
    keys = ["model", "parameters (copying model)", "numbers carried", "copy ≤ 16", "copy 32",
            mqar, "induction at 64", "induction at 256"]
    want = [["Transformer (absolute)", "10,234", "123,456", "11%", "31%", "70%", "95%", "12%"],
            ["Mamba", "20,234", "2,048", "22%", "32%", "80%", "85%", "22%"],
            ["LSTM", "30,234", "512", "33%", "33%", "—", "—", "—"],
            ["Hybrid (Mamba, attention, Mamba)", "40,234", "1,000,000", "44%", "34%", "—",
             "75%", "32%"]]
    assert [list(r) for r in rows] == [keys] * 4
    assert [list(r.values()) for r in rows] == want
    # the copying column beyond training is the one asked for
    beyond = ledger.rows(_ledger_runs(), dict.fromkeys(ledger.FAMILIES, 1), copy_length=64)
    assert [r["copy 64"] for r in beyond] == ["0%", "5%", "10%", "15%"]


def test_logs_of_selects_runs_by_every_key_and_names_a_miss():
    """logs_of returns the logs of the runs matching every given key (in stored order), and
    refuses a selection that matches nothing, showing it."""
    from sseq.experiments.recall import logs_of

    results = {"runs": [{"model": "a", "seed": 0, "log": {"n": 1}},
                        {"model": "b", "seed": 0, "log": {"n": 2}},
                        {"model": "a", "seed": 1, "log": {"n": 3}}]}
    assert logs_of(results, model="a") == [{"n": 1}, {"n": 3}]
    assert logs_of(results, model="a", seed=1) == [{"n": 3}]
    assert logs_of(results) == [{"n": 1}, {"n": 2}, {"n": 3}]
    with pytest.raises(ValueError) as info:
        logs_of(results, model="b", seed=1)
    assert str(info.value) == "no stored runs with {'model': 'b', 'seed': 1}"


def test_plot_band_draws_the_seed_mean_and_range_in_the_familys_style():
    """plot_band: a line at the mean over seeds in the family's colour, line style and the
    marker asked for, at the given x, labelled, over a light band from the smallest to the
    largest seed; a missing value (a stored NaN, null in JSON) leaves a gap."""
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgba

    from sseq.experiments.recall import plot_band

    fig, ax = plt.subplots()
    try:
        ys = [[0.0, 0.5, 1.0], [0.3, 0.1, 0.4], [0.6, 0.9, 0.7]]
        assert plot_band(ax, [1, 2, 3], ys, family="hybrid", label="H", marker="s") is ax
        plot_band(ax, [1, 2, 3], ys, family="transformer_rope", label="R")
        # a stored NaN comes back from JSON as None: a gap in the curve, not an error
        plot_band(ax, [5, 6], [[None, 1], [0.5, 0]], family="mamba", label="M")
        (line, rope, gap) = ax.get_lines()
        np.testing.assert_allclose(line.get_xdata(), [1, 2, 3])
        np.testing.assert_allclose(line.get_ydata(), [0.3, 0.5, 0.7])
        np.testing.assert_allclose(gap.get_xdata(), [5, 6])
        np.testing.assert_allclose(gap.get_ydata(), [np.nan, 0.5])
        assert (line.get_color(), line.get_linestyle(), line.get_marker(), line.get_label(),
                line.get_markersize()) == ("#009E73", "-.", "s", "H", 3.5)
        assert (rope.get_color(), rope.get_linestyle(), rope.get_marker()) == (
            "#CC79A7", "--", "o")
        band = ax.collections[0]
        (path,) = band.get_paths()
        vertices = {tuple(v) for v in path.vertices.round(6)}
        assert {(1, 0.0), (2, 0.1), (3, 0.4), (1, 0.6), (2, 0.9), (3, 1.0)} <= vertices
        np.testing.assert_allclose(band.get_facecolor()[0], to_rgba("#009E73", 0.18))
        assert band.get_linewidth()[0] == 0
    finally:
        plt.close(fig)


def test_train_on_task_records_window_means_and_the_last_step(monkeypatch):
    """train_on_task: batches from a generator seeded 10,000 + seed, the model in training
    mode, gradients clipped to ``clip_grad`` (1.0 by default), a record every ``eval_every``
    steps and at the last one, its loss the mean of the step losses since the previous record
    (a non-finite sum recorded as NaN), and the caller's random state left as it was."""
    import math as m

    import torch

    from sseq import recall_tasks
    from sseq.experiments import recall

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed, self.modes = torch.nn.Embedding(8, 8), []

        def forward(self, x):
            if torch.is_grad_enabled():
                self.modes.append(self.training)
            return self.embed(x)

    seeds, losses, norms = [], [], []

    def sample(n, generator):
        seeds.append(generator.initial_seed())
        return recall_tasks.copying(n, length=2, n_symbols=4, seed=generator)

    def loss_of(output, targets):
        loss = torch.nn.functional.cross_entropy(output.flatten(0, 1), targets.flatten())
        losses.append(loss.item())
        return loss

    real_clip = torch.nn.utils.clip_grad_norm_

    def clip(params, max_norm):
        norms.append(max_norm)
        return real_clip(params, max_norm)

    monkeypatch.setattr(recall, "compute_loss", loss_of)
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", clip)
    model = Tiny().eval()
    eval_set = recall_tasks.copying(8, length=2, n_symbols=4, seed=1)
    torch.manual_seed(123)
    log = recall.train_on_task(model, sample, eval_set, steps=5, batch_size=3, lr=1e-2,
                               seed=7, eval_every=2)
    after = torch.rand(1)
    torch.manual_seed(123)
    assert torch.equal(after, torch.rand(1))
    assert seeds == [10_007] * 5 and model.modes == [True] * 5 and norms == [1.0] * 5
    assert log["step"] == [2, 4, 5] and log["examples"] == [6, 12, 15]
    want = [(losses[0] + losses[1]) / 2, (losses[2] + losses[3]) / 2, losses[4]]
    assert log["loss"] == pytest.approx(want, rel=1e-12)
    token, seq = recall_tasks.sequence_accuracy(model, *eval_set)
    assert (log["token_acc"][-1], log["seq_acc"][-1]) == (token, seq)
    assert set(log) == {"step", "examples", "loss", "token_acc", "seq_acc"}

    recall.train_on_task(Tiny(), sample, eval_set, steps=1, batch_size=3, lr=1e-2, seed=0,
                         eval_every=1, clip_grad=0.25)
    assert norms[-1] == 0.25
    monkeypatch.setattr(recall, "compute_loss", lambda out, tgt: loss_of(out, tgt) * m.inf)
    log = recall.train_on_task(Tiny(), sample, eval_set, steps=1, batch_size=3, lr=1e-2,
                               seed=0, eval_every=1)
    assert m.isnan(log["loss"][0])


def test_train_on_task_frees_the_gradients_of_each_step():
    """Each step starts from no gradients (set to None, PyTorch's default), so a parameter
    that a step does not use is not moved by Adam's momentum from earlier steps."""
    import torch

    from sseq import recall_tasks
    from sseq.experiments.recall import train_on_task

    class FirstStepOnly(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed, self.extra, self.calls = torch.nn.Embedding(8, 8), \
                torch.nn.Parameter(torch.zeros(8)), 0

        def forward(self, x):
            out = self.embed(x)
            if torch.is_grad_enabled():
                self.calls += 1
                if self.calls == 1:
                    out = out + self.extra
            return out

    eval_set = recall_tasks.copying(4, length=2, n_symbols=4, seed=1)
    torch.manual_seed(0)
    model = FirstStepOnly()
    train_on_task(model, lambda n, g: recall_tasks.copying(n, length=2, n_symbols=4, seed=g),
                  eval_set, steps=1, batch_size=3, lr=0.1, seed=0, eval_every=1)
    after_first = model.extra.detach().clone()
    assert after_first.abs().max() > 0.05  # the first step moved it
    torch.manual_seed(0)
    model = FirstStepOnly()
    train_on_task(model, lambda n, g: recall_tasks.copying(n, length=2, n_symbols=4, seed=g),
                  eval_set, steps=3, batch_size=3, lr=0.1, seed=0, eval_every=3)
    assert torch.equal(model.extra.detach(), after_first)
