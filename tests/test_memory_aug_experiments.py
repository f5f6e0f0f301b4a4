"""The ntm_copy and knn_lm experiments: a tiny run end to end, the stored full runs, and a
re-run of the first steps that reproduces the stored log."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from sseq import experiments
from sseq.experiments import knn_lm, ntm_copy


def test_a_tiny_copy_run_logs_its_records():
    config = ntm_copy.Config(steps=4, lstm_steps=4, eval_every=2, n_eval=4, eval_lengths=(2, 3),
                             train_length=3)
    for model in ("ntm", "lstm"):
        log = ntm_copy.run_job(config, {"model": model, "seed": 0})
        assert log["step"] == [2, 4] and len(log["bits"]) == 2 and len(log["loss"]) == 2
        assert all(0 <= b <= 1 for b in log["bits"] + log["sequences"])
    with pytest.raises(ValueError, match="model must be 'ntm' or 'lstm'"):
        ntm_copy.build(config, "gru", 0)


def test_the_lstm_baseline_has_about_the_ntms_parameters():
    config = ntm_copy.Config()
    sizes = [ntm_copy.count_parameters(ntm_copy.build(config, m, 0)) for m in config.models]
    assert max(sizes) / min(sizes) < 1.02


@pytest.fixture(scope="module")
def copy_stored():
    return experiments.load("ntm_copy")


def test_the_stored_copy_run_is_the_full_configuration(copy_stored):
    config = ntm_copy.Config()
    assert copy_stored["config"] == json.loads(json.dumps(dataclasses.asdict(config)))
    assert not copy_stored["quick"] and len(copy_stored["seeds"]) >= 3
    assert len(copy_stored["runs"]) == len(ntm_copy.jobs(config, copy_stored["seeds"]))
    for run in copy_stored["runs"]:
        steps = config.steps if run["model"] == "ntm" else config.lstm_steps
        assert run["log"]["step"][-1] == steps
        assert len(run["log"]["bits"]) == len(config.eval_lengths)
    for model, entry in copy_stored["summary"].items():
        bits = [r["log"]["bits"] for r in copy_stored["runs"] if r["model"] == model]
        assert entry["bits"] == pytest.approx([sum(b) / len(b) for b in zip(*bits, strict=True)],
                                               rel=1e-3)
    assert ntm_copy.load_trained("ntm").config.n_slots == config.n_slots


def test_the_copy_plot_can_show_each_seed(copy_stored):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ntm_copy.plot_accuracy(ax, copy_stored, "sequences", seeds=("ntm",))
    n_ntm = sum(r["model"] == "ntm" for r in copy_stored["runs"])
    labels = [line.get_label() for line in ax.get_lines()]
    assert sum(label.startswith("NTM") for label in labels) == n_ntm  # one line per seed
    assert sum(label.startswith("LSTM") for label in labels) == 1      # the mean
    ntm_lines = [line for line in ax.get_lines() if line.get_label().startswith("NTM")]
    want = [r["log"]["sequences"] for r in copy_stored["runs"] if r["model"] == "ntm"]
    assert [list(line.get_ydata()) for line in ntm_lines] == want
    plt.close(fig)


def test_a_prefix_of_the_stored_copy_run_reproduces_its_log(copy_stored):
    out = experiments.prefix("ntm_copy")
    assert out["job"] == {"model": "ntm", "seed": copy_stored["seeds"][0]}
    assert out["rerun"]["step"] == out["stored"]["step"] == [250]
    for key, tol in (("loss", 2e-3), ("eval_bits", 4 / 1024)):  # float32 on another CPU
        for got, want in zip(out["rerun"][key], out["stored"][key], strict=True):
            assert got == pytest.approx(want, rel=tol, abs=tol), key


def _inf(value):
    """The results store ±inf (λ = 1: a character without a vote) as null."""
    return math.inf if value is None else value


@pytest.fixture(scope="module")
def knn_stored():
    return experiments.load("knn_lm")


def test_the_stored_knn_run_is_the_full_configuration(knn_stored):
    config = knn_lm.Config()
    assert knn_stored["config"] == json.loads(json.dumps(dataclasses.asdict(config)))
    assert not knn_stored["quick"]
    log = knn_stored["runs"][0]["log"]
    assert log["size"] == list(config.sizes)
    assert len(log["tune"]) == len(log["test"]) == len(config.sizes)
    assert len(log["test"][0]) == len(config.temperatures)
    assert len(log["test"][0][0]) == len(config.lambdas)
    s = knn_stored["summary"]
    for n, grid in enumerate(log["tune"]):  # T and λ chosen on the tune half, reported on test
        i, j = config.temperatures.index(s["temperature"][n]), config.lambdas.index(s["lambda"][n])
        finite = [v for row in grid for v in row if v is not None]  # None: an infinite loss
        assert grid[i][j] == pytest.approx(min(finite), abs=2e-3)
        assert s["test_loss"][n] == log["test"][n][i][j]


def test_a_prefix_of_the_stored_knn_run_reproduces_its_log(knn_stored):
    out = experiments.prefix("knn_lm")
    assert out["rerun"]["size"] == out["stored"]["size"] == [knn_lm.Config().sizes[0]]
    for key in ("tune", "test"):
        got = [_inf(v) for grid in out["rerun"][key] for row in grid for v in row]
        want = [_inf(v) for grid in out["stored"][key] for row in grid for v in row]
        assert got == pytest.approx(want, rel=1e-3)
