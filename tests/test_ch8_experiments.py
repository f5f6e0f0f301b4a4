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
