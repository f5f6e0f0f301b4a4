"""sseq.experiments: the registry, the runner, the stored results — and that a short prefix
of a stored run, re-run now, reproduces its log."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import types

import pytest

from sseq import experiments
from sseq.experiments import __main__ as cli
from sseq.experiments import selective_copying


# A tiny experiment, registered for the runner's tests: the log is a known function of the job.
@dataclasses.dataclass(frozen=True)
class ToyConfig:
    steps: int = 3
    scale: float = 1.0


def _toy_module():
    module = types.ModuleType("sseq_toy_experiment")
    module.DESCRIPTION = "a toy"
    module.Config = ToyConfig
    module.QUICK = ToyConfig(steps=2)
    module.PREFIX_STEPS = 2
    module.RECORDS = ("step", "value")
    module.jobs = lambda config, seeds: [{"seed": s} for s in seeds]

    def run_job(config, job, steps=None):
        n = steps or config.steps
        return {"step": list(range(1, n + 1)),
                "value": [config.scale * math.pi * (job["seed"] + k) for k in range(n)]}

    module.run_job = run_job
    module.summarize = lambda config, runs: {"n_runs": len(runs), "nan": float("nan")}
    return module


@pytest.fixture
def toy(monkeypatch, tmp_path):
    module = _toy_module()
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(experiments.EXPERIMENTS, "toy", module.__name__)
    monkeypatch.setattr(experiments, "RESULTS", tmp_path)
    return module


def test_run_stores_rounded_results_and_prefix_reproduces_them(toy, tmp_path):
    results = experiments.run("toy", seeds=[0, 2], progress=False)
    stored = json.loads((tmp_path / "toy.json").read_text())
    assert stored == results and experiments.load("toy") == results
    assert [r["seed"] for r in stored["runs"]] == [0, 2]
    assert stored["runs"][1]["log"]["value"] == [6.283, 9.425, 12.57]  # 4 significant digits
    assert stored["summary"] == {"n_runs": 2, "nan": None}  # NaN is stored as null
    assert stored["config"] == {"steps": 3, "scale": 1.0} and stored["seconds"] >= 0
    out = experiments.prefix("toy", which=1)
    assert out["stored"] == out["rerun"] == {"step": [1, 2], "value": [6.283, 9.425]}


def test_quick_runs_save_nothing_by_default(toy, tmp_path):
    results = experiments.run("toy", quick=True, seeds=[0], progress=False)
    assert results["quick"] and results["config"]["steps"] == 2
    assert not (tmp_path / "toy.json").exists()


def test_worker_processes_give_the_same_numbers(toy):
    one = experiments.run("toy", seeds=[0, 1, 2], progress=False, save=False)
    two = experiments.run("toy", seeds=[0, 1, 2], jobs=2, progress=False, save=False)
    assert [r["log"] for r in one["runs"]] == [r["log"] for r in two["runs"]]


def test_a_changed_log_is_detected(toy, tmp_path):
    experiments.run("toy", seeds=[0], progress=False)
    stored = json.loads((tmp_path / "toy.json").read_text())
    stored["runs"][0]["log"]["value"][1] = 0.0
    (tmp_path / "toy.json").write_text(json.dumps(stored))
    out = experiments.prefix("toy")
    assert out["stored"] != out["rerun"]


def test_round_floats():
    assert experiments.round_floats({"a": [1.23456, (2.0, 123456.7)], "b": "x", "c": 3}) == \
        {"a": [1.235, [2.0, 123500.0]], "b": "x", "c": 3}
    assert experiments.round_floats(float("nan")) is None


def test_bad_arguments_name_themselves(toy):
    with pytest.raises(ValueError, match="name must be one of"):
        experiments.run("nope")
    with pytest.raises(ValueError, match="seeds must be a non-empty list of ints >= 0"):
        experiments.run("toy", seeds=[])
    with pytest.raises(ValueError, match="jobs must be a positive int, got 0"):
        experiments.run("toy", jobs=0)
    with pytest.raises(FileNotFoundError, match="python -m sseq.experiments toy"):
        experiments.load("toy")


def test_the_command_line(toy, tmp_path, capsys):
    assert cli.main(["--list"]) == 0
    assert "selective_copying: Selective vs plain copying" in capsys.readouterr().out
    assert cli.main(["toy", "--seeds", "3"]) == 0
    out = capsys.readouterr().out
    assert '"n_runs": 1' in out and "wrote" in out and "took" in out
    assert cli.main(["toy", "--prefix"]) == 0
    assert "the re-run reproduces the stored log" in capsys.readouterr().out


# --- the stored selective-copying run ----------------------------------------------------------


@pytest.fixture(scope="module")
def stored():
    return experiments.load("selective_copying")


def test_the_stored_run_is_the_full_configuration(stored):
    config = selective_copying.Config()
    assert stored["config"] == json.loads(json.dumps(dataclasses.asdict(config)))
    assert not stored["quick"] and len(stored["seeds"]) >= 3
    assert len(stored["runs"]) == len(selective_copying.jobs(config, stored["seeds"]))
    for run in stored["runs"]:
        assert run["log"]["step"][-1] == selective_copying.steps_of(config, run)
        assert len(run["log"]["position_acc"]) == config.n_memorize


def test_a_prefix_of_the_stored_run_reproduces_its_log(stored):
    out = experiments.prefix("selective_copying")
    assert out["job"] == {"task": "selective", "model": "s4d", "seed": stored["seeds"][0]}
    assert out["rerun"]["step"] == out["stored"]["step"] == [50, 100]
    # float32 training: another CPU may round the last digit of a loss differently
    for key, tol in (("loss", 2e-3), ("eval_acc", 4 / 4096)):
        for got, want in zip(out["rerun"][key], out["stored"][key], strict=True):
            assert got == pytest.approx(want, rel=tol, abs=tol), key


def test_the_summary_is_computed_from_the_logs(stored):
    for task, models in stored["summary"].items():
        for model, entry in models.items():
            finals = [r["log"]["eval_acc"][-1] for r in stored["runs"]
                      if r["task"] == task and r["model"] == model]
            assert entry["final_acc"] == finals
            assert entry["mean_acc"] == pytest.approx(sum(finals) / len(finals), rel=1e-3)
            assert entry["steps"] == max(r["log"]["step"][-1] for r in stored["runs"]
                                         if r["task"] == task and r["model"] == model)
