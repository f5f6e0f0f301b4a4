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


def test_stored_results_are_strict_json():
    """Python's json writes NaN/Infinity, which JSON does not have and strict parsers (a
    browser's JSON.parse, jq) refuse: the runner stores them as null instead."""
    import json

    from sseq.experiments import RESULTS, _dumps, round_floats

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    stored = sorted(RESULTS.glob("*.json"))
    assert len(stored) >= 4
    for path in stored:
        json.loads(path.read_text(), parse_constant=refuse)
    assert json.loads(_dumps(round_floats({"x": [1.0, float("inf"), float("nan")]}))) == {
        "x": [1.0, None, None]}


# --- the runner, exactly: stored fields, clocks, environment, file text, progress -----------


class _Clock:
    """A fake ``time`` module: perf_counter and process_time return the given readings in turn."""

    def __init__(self, perf, cpu=()):
        self._perf, self._cpu = iter(perf), iter(cpu)

    def perf_counter(self):
        return next(self._perf)

    def process_time(self):
        return next(self._cpu)


def test_run_stores_every_field_with_times_measured_per_job(toy, monkeypatch):
    """The stored results: name, description, quick flag, config, seeds (a list), the wall
    seconds of the whole run, each job's wall and CPU seconds (end minus start of that job) and
    their CPU sum, the number of processes, the environment, and the summary."""
    import os
    import platform

    import torch

    # run: start; job 1: wall start, cpu start, wall end, cpu end; job 2 likewise; run: end
    monkeypatch.setattr(experiments, "time", _Clock([10.0, 11.0, 13.0, 20.0, 24.0, 100.0],
                                                    [1.0, 1.5, 3.0, 3.25]))
    monkeypatch.setattr(os, "getloadavg", lambda: (1.2345, 9.0, 9.0))
    results = experiments.run("toy", seeds=(0, 2), progress=False, save=False)
    env = {"python": platform.python_version(), "torch": torch.__version__,
           "machine": platform.machine(), "cpus": os.cpu_count(), "load_average": 1.2}
    logs = [{"step": [1, 2, 3], "value": [0.0, 3.142, 6.283]},
            {"step": [1, 2, 3], "value": [6.283, 9.425, 12.57]}]
    assert results == {
        "experiment": "toy", "description": "a toy", "quick": False,
        "config": {"steps": 3, "scale": 1.0}, "seeds": [0, 2], "seconds": 90.0,
        "cpu_seconds": 0.75, "jobs": 1, "environment": env,
        "runs": [{"seed": 0, "seconds": 2.0, "cpu_seconds": 0.5, "log": logs[0]},
                 {"seed": 2, "seconds": 4.0, "cpu_seconds": 0.25, "log": logs[1]}],
        "summary": {"n_runs": 2, "nan": None}}


def test_each_job_runs_single_threaded_and_restores_the_threads(toy, monkeypatch):
    """A job runs with one torch thread (the same numbers on any machine), and the caller's
    thread count is restored afterwards, also when the job fails."""
    import torch

    seen = []

    def run_job(config, job, steps=None):
        seen.append(torch.get_num_threads())
        if job["seed"] == 9:
            raise RuntimeError("job failed")
        return {"step": [1], "value": [0.0]}

    monkeypatch.setattr(toy, "run_job", run_job)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        experiments.run("toy", seeds=[0], progress=False, save=False)
        assert seen == [1] and torch.get_num_threads() == 2
        with pytest.raises(RuntimeError, match="job failed"):
            experiments.run("toy", seeds=[9], progress=False, save=False)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_the_stored_file_is_indented_json_with_flat_number_lists(toy, tmp_path, monkeypatch):
    """results/NAME.json: indented by one space, each list of numbers (negative, exponent,
    null included) on one line, lists of objects spread out, a final newline."""
    monkeypatch.setattr(toy, "summarize", lambda config, runs: {
        "x": [-1.5, 2e-07, None, 3], "empty": [], "rows": [{"a": 1}]})
    results = experiments.run("toy", seeds=[0], progress=False)
    text = (tmp_path / "toy.json").read_text()
    assert text.endswith('''
 "summary": {
  "x": [-1.5, 2e-07, null, 3],
  "empty": [],
  "rows": [
   {
    "a": 1
   }
  ]
 }
}
''')
    assert ' "seeds": [0],\n' in text
    assert '   "log": {\n    "step": [1, 2, 3],\n    "value": [0.0, 3.142, 6.283]\n   }' in text
    assert json.loads(text) == results


def test_save_overrides_the_default_and_creates_the_folder(toy, tmp_path, monkeypatch):
    """save=True stores a quick run, save=False keeps a full run unsaved, and a missing results
    folder is created (an existing one is fine)."""
    experiments.run("toy", seeds=[0], progress=False, save=False)
    assert not (tmp_path / "toy.json").exists()
    experiments.run("toy", quick=True, seeds=[0], progress=False, save=True)
    assert json.loads((tmp_path / "toy.json").read_text())["quick"] is True
    monkeypatch.setattr(experiments, "RESULTS", tmp_path / "new")
    experiments.run("toy", seeds=[1], progress=False)
    assert experiments.load("toy")["seeds"] == [1]
    assert experiments.results_path("toy") == tmp_path / "new" / "toy.json"


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_progress_bar_counts_the_runs(toy, capsys, jobs):
    """progress=True shows a bar named after the experiment that reaches the number of runs
    (in one process or several); progress=False prints nothing."""
    experiments.run("toy", seeds=[0, 1, 2], jobs=jobs, save=False)
    err = capsys.readouterr().err
    assert "toy: 100%" in err and "3/3" in err
    experiments.run("toy", seeds=[0, 1, 2], jobs=jobs, progress=False, save=False)
    assert capsys.readouterr().err == ""


def test_argument_errors_say_what_was_expected_and_given(toy):
    """Every bad name, seed list and job count is refused with the expected and the given value
    (booleans are not counts, seed 0 is allowed)."""
    names = "['copying', 'induction', 'knn_lm', 'lm', 'mqar', 'mqar_long', 'ntm_copy', " \
            "'selective_copying', 'toy']"
    for call in (lambda: experiments.run("nope"), lambda: experiments.results_path("nope"),
                 lambda: experiments.prefix("nope")):
        with pytest.raises(ValueError) as info:
            call()
        assert str(info.value) == f"name must be one of {names}, got 'nope'"
    for seeds in ([], 3, [0, -1], [True], [1.0], "01"):
        with pytest.raises(ValueError) as info:
            experiments.run("toy", seeds=seeds)
        assert str(info.value) == f"seeds must be a non-empty list of ints >= 0, got {seeds!r}"
    for jobs in (0, -1, True, 1.0):
        with pytest.raises(ValueError) as info:
            experiments.run("toy", jobs=jobs)
        assert str(info.value) == f"jobs must be a positive int, got {jobs!r}"
    assert experiments.run("toy", seeds=[0], progress=False, save=False)["seeds"] == [0]


def test_load_names_the_missing_file(toy, tmp_path):
    """A missing result file: the error names the experiment, the path and the command."""
    with pytest.raises(FileNotFoundError) as info:
        experiments.load("toy")
    assert str(info.value) == (f"no stored results for 'toy' at {tmp_path / 'toy.json'}: run "
                               "'python -m sseq.experiments toy' first")


def test_round_floats_passes_digits_down_and_drops_infinities():
    """Both infinities become None, and the digits asked for reach nested values."""
    assert experiments.round_floats([math.inf, -math.inf, 0.5]) == [None, None, 0.5]
    assert experiments.round_floats({"a": [(1.23456,)], "b": 9.876}, digits=2) == {
        "a": [[1.2]], "b": 9.9}
    assert experiments.DIGITS == 4


@dataclasses.dataclass(frozen=True)
class ToyTupleConfig:
    steps: int = 4
    lengths: tuple = (2, 3)


def test_prefix_rebuilds_the_config_and_job_and_cuts_both_logs(toy, monkeypatch):
    """prefix re-runs stored run ``which`` for ``steps`` steps (default PREFIX_STEPS) with the
    stored config rebuilt (JSON lists back to tuples: equal to the original Config) and the
    stored job without its log and times; the stored log is cut to the re-run's length."""
    configs, calls = [], []
    run_job = toy.run_job

    def recording(config, job, steps=None):
        configs.append(config)
        calls.append((dict(job), steps))
        return run_job(ToyConfig(steps=config.steps), job, steps=steps)

    monkeypatch.setattr(toy, "Config", ToyTupleConfig)
    monkeypatch.setattr(toy, "run_job", recording)
    experiments.run("toy", seeds=[0, 2], progress=False)
    configs.clear()
    calls.clear()
    out = experiments.prefix("toy", which=1)
    assert configs == [ToyTupleConfig()] and calls == [({"seed": 2}, 2)]
    assert out == {"job": {"seed": 2}, "steps": 2,
                   "rerun": {"step": [1, 2], "value": [6.283, 9.425]},
                   "stored": {"step": [1, 2], "value": [6.283, 9.425]}}
    out = experiments.prefix("toy", steps=3)
    assert calls[-1] == ({"seed": 0}, 3) and out["steps"] == 3
    assert out["stored"] == out["rerun"] == {"step": [1, 2, 3], "value": [0.0, 3.142, 6.283]}


# --- the command line, exactly ------------------------------------------------------------------


def test_the_list_names_every_experiment_with_its_description(toy, capsys):
    """--list (and no name at all) prints one line per registered experiment, in order."""
    import importlib

    want = "".join(f"{name}: {importlib.import_module(module).DESCRIPTION}\n"
                   for name, module in experiments.EXPERIMENTS.items())
    assert want.endswith("toy: a toy\n") and want.count("\n") == 9
    assert cli.main(["--list"]) == 0
    assert capsys.readouterr().out == want
    assert cli.main([]) == 0
    assert capsys.readouterr().out == want


def test_the_command_line_prints_the_summary_file_and_times(toy, tmp_path, capsys, monkeypatch):
    """A full run prints the summary (JSON, indent 1), the file written, the CPU seconds and
    processes, and the wall time; --quick saves nothing and says nothing about a file; the
    defaults are seeds 0 1 2 in one process."""
    monkeypatch.setattr(cli, "time", _Clock([5.0, 12.6, 0.0, 0.4]))
    monkeypatch.setattr(experiments, "time", _Clock([0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 9.0],
                                                    [0.0, 2.0, 2.0, 3.4, 3.4, 4.0]))
    assert cli.main(["toy"]) == 0
    assert capsys.readouterr().out == (
        '{\n "n_runs": 3,\n "nan": null\n}\n'
        f"wrote {tmp_path / 'toy.json'}\n4 s of CPU time in 1 process(es)\ntook 8 s\n")
    assert experiments.load("toy")["seeds"] == [0, 1, 2]
    (tmp_path / "toy.json").unlink()
    monkeypatch.setattr(experiments, "run", lambda name, **kw: {
        "summary": kw, "cpu_seconds": 0.2})
    assert cli.main(["toy", "--quick", "--seeds", "4", "5", "--jobs", "2"]) == 0
    assert capsys.readouterr().out == (
        '{\n "quick": true,\n "seeds": [\n  4,\n  5\n ],\n "jobs": 2\n}\n'
        "0 s of CPU time in 2 process(es)\ntook 0 s\n")
    assert not (tmp_path / "toy.json").exists()


def test_the_command_line_prefix_says_whether_the_log_is_reproduced(toy, tmp_path, capsys):
    """--prefix prints the comparison as JSON and says whether the re-run reproduces the stored
    log, or DIFFERS FROM it when a stored number was changed."""
    experiments.run("toy", seeds=[0], progress=False)
    assert cli.main(["toy", "--prefix"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(json.dumps(experiments.prefix("toy"), indent=1) + "\nthe re-run")
    assert out.splitlines()[-2] == "the re-run reproduces the stored log"
    stored = json.loads((tmp_path / "toy.json").read_text())
    stored["runs"][0]["log"]["value"][0] = 1.0
    (tmp_path / "toy.json").write_text(json.dumps(stored))
    assert cli.main(["toy", "--prefix"]) == 0
    assert capsys.readouterr().out.splitlines()[-2] == "the re-run DIFFERS FROM the stored log"


def test_the_command_line_refuses_an_unknown_name(toy, capsys):
    """An unknown experiment stops with argparse's usage error, listing the choices."""
    with pytest.raises(SystemExit) as info:
        cli.main(["nope"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: python -m sseq.experiments [-h]")
    assert err.rstrip().endswith("error: unknown experiment 'nope'; choose from "
                                 f"{sorted(experiments.EXPERIMENTS)}")


def test_jobs_worker_processes_run_the_jobs(toy, monkeypatch):
    """jobs=1 runs every job in this process; jobs=2 starts a pool of exactly two worker
    processes and runs the jobs there."""
    import os
    from concurrent.futures import ProcessPoolExecutor

    pools = []

    class Pool(ProcessPoolExecutor):
        def __init__(self, max_workers):
            pools.append(max_workers)
            super().__init__(max_workers)

    monkeypatch.setattr(experiments, "ProcessPoolExecutor", Pool)
    monkeypatch.setattr(toy, "run_job", lambda config, job, steps=None: {"pid": os.getpid()})
    one = experiments.run("toy", seeds=[0, 1], progress=False, save=False)
    assert [r["log"]["pid"] for r in one["runs"]] == [os.getpid()] * 2 and pools == []
    two = experiments.run("toy", seeds=[0, 1], jobs=2, progress=False, save=False)
    assert os.getpid() not in [r["log"]["pid"] for r in two["runs"]] and pools == [2]


def test_the_command_line_help_describes_every_option(capsys):
    """--help shows the program, its description and what each option does."""
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    for text in ("usage: python -m sseq.experiments [-h] [--list] [--quick] [--seeds SEEDS "
                 "[SEEDS ...]] [--jobs JOBS] [--prefix] [name]",
                 "[name] Run one of the book's long experiments. positional arguments:",
                 "name the experiment (see --list)",
                 "--list list the experiments", "--quick a small version, to try things; "
                 "saves nothing", "--jobs JOBS worker processes, one thread each (results do "
                 "not change)", "--prefix re-run the first steps of the first stored run and "
                 "compare"):
        assert text in out, text


def test_the_file_writer_refuses_nan_and_infinity():
    """_dumps writes strict JSON only: a NaN or infinity that reached it unrounded is an
    error, never a ``NaN``/``Infinity`` token in a stored file."""
    from sseq.experiments import _dumps

    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError, match="not JSON compliant"):
            _dumps({"x": [1.0, bad]})
    assert _dumps({"x": [1.0, -2]}) == '{\n "x": [1.0, -2]\n}\n'


def test_the_jobs_are_listed_from_the_configuration_run(toy, monkeypatch):
    """run asks the module for the jobs of the configuration it runs (QUICK for quick=True),
    with the seeds given, and for the summary of that configuration's runs."""
    monkeypatch.setattr(toy, "jobs", lambda config, seeds: [
        {"seed": s, "steps": config.steps} for s in seeds])
    monkeypatch.setattr(toy, "summarize", lambda config, runs: {
        "steps": config.steps, "seeds": [r["seed"] for r in runs]})
    quick = experiments.run("toy", quick=True, seeds=[4], progress=False)
    full = experiments.run("toy", seeds=[5], progress=False, save=False)
    assert [{k: r[k] for k in ("seed", "steps")} for r in quick["runs"] + full["runs"]] == [
        {"seed": 4, "steps": 2}, {"seed": 5, "steps": 3}]
    assert (quick["summary"], full["summary"]) == ({"steps": 2, "seeds": [4]},
                                                   {"steps": 3, "seeds": [5]})
