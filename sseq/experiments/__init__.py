"""The book's long experiments: run once by a command, stored small, plotted by the chapters.

A chapter's notebook must run in a minute; some claims need longer training (several models,
several seeds). Those are *experiments*, one module each in this package, run by

    python -m sseq.experiments NAME            # the full run; writes results/NAME.json
    python -m sseq.experiments NAME --quick    # a small version, to try things (saves nothing)
    python -m sseq.experiments NAME --prefix   # re-run the start, compare with the stored log
    python -m sseq.experiments --list

An experiment module defines

* ``DESCRIPTION`` (one line) and a frozen dataclass ``Config`` whose defaults are the full run;
  ``QUICK``, a smaller ``Config``; ``PREFIX_STEPS``, the steps :func:`prefix` re-runs;
* ``jobs(config, seeds)`` → a list of dicts, one per independent run (say, a model and seed);
* ``run_job(config, job, steps=None)`` → the run's log, a dict (the first ``steps`` steps only,
  when given), deterministic given the job; ``RECORDS`` names its equal-length lists, one
  entry per record in training, which :func:`prefix` compares;
* ``summarize(config, runs)`` → a small dict of the numbers the chapter quotes.

:func:`run` runs the jobs (in ``jobs`` worker processes, one thread each) with a progress bar,
rounds every float to 4 significant digits, and writes ``results/NAME.json``: the config, the
seeds, every run's log, the summary, the wall and CPU time and the environment. A test calls
:func:`prefix`, which re-runs the first steps of a stored run and compares them with the log.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import platform
import re
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

__all__ = ["EXPERIMENTS", "RESULTS", "load", "prefix", "results_path", "round_floats", "run"]

# name -> module; a new experiment is one module and one line here.
EXPERIMENTS = {
    "selective_copying": "sseq.experiments.selective_copying",
    "lm": "sseq.experiments.lm",
}
RESULTS = Path(__file__).resolve().parent / "results"
DIGITS = 4  # significant digits stored: what a plot or a quoted number needs


def _module(name: str):
    if name not in EXPERIMENTS:
        raise ValueError(f"name must be one of {sorted(EXPERIMENTS)}, got {name!r}")
    return importlib.import_module(EXPERIMENTS[name])


def results_path(name: str) -> Path:
    """Where the full run of experiment ``name`` is stored."""
    _module(name)
    return RESULTS / f"{name}.json"


def round_floats(obj, digits: int = DIGITS):
    """``obj`` with every float (in nested dicts, lists, tuples) rounded to ``digits``
    significant digits; NaN becomes None (JSON has no NaN)."""
    from sseq.book import round_sig

    if isinstance(obj, float):
        return None if obj != obj else round_sig(obj, digits)
    if isinstance(obj, dict):
        return {k: round_floats(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [round_floats(v, digits) for v in obj]
    return obj


def _run_one(name: str, config, job: dict, steps=None) -> dict:
    """One job in a single-threaded process: the same numbers on any number of cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _module(name).run_job(config, job, steps=steps)
    finally:
        torch.set_num_threads(threads)


def _timed(name: str, config, job: dict):
    """The log, the wall seconds and the CPU seconds of one job (on a shared machine the
    CPU seconds say what the job costs; the wall seconds also count the other users)."""
    wall, cpu = time.perf_counter(), time.process_time()
    log = _run_one(name, config, job)
    return log, time.perf_counter() - wall, time.process_time() - cpu


def _environment() -> dict:
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__,
            "machine": platform.machine(), "cpus": os.cpu_count(),
            "load_average": round(os.getloadavg()[0], 1)}


def _check_seeds(seeds):
    if not isinstance(seeds, (list, tuple)) or not seeds or any(
            isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ValueError(f"seeds must be a non-empty list of ints >= 0, got {seeds!r}")
    return list(seeds)


def run(name: str, *, quick: bool = False, seeds=(0, 1, 2), jobs: int = 1,
        progress: bool = True, save: bool | None = None) -> dict:
    """Run experiment ``name`` and return its results (and store them, see ``save``).

    Args:
        name: a key of :data:`EXPERIMENTS`.
        quick: the module's ``QUICK`` configuration instead of the full one.
        seeds: the seeds, each a separate set of runs.
        jobs: worker processes (each single-threaded: results do not depend on it).
        progress: a tqdm bar over the runs.
        save: write ``results/NAME.json``; default: for full runs only.

    Returns:
        The results dict (as stored: floats rounded).
    """
    from tqdm.auto import tqdm

    module = _module(name)
    config = module.QUICK if quick else module.Config()
    seeds = _check_seeds(seeds)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive int, got {jobs!r}")
    todo = module.jobs(config, seeds)
    start = time.perf_counter()
    bar = tqdm(total=len(todo), desc=name, disable=not progress)
    if jobs == 1:
        timed = []
        for job in todo:
            timed.append(_timed(name, config, job))
            bar.update()
    else:
        with ProcessPoolExecutor(jobs) as pool:
            futures = [pool.submit(_timed, name, config, job) for job in todo]
            for future in futures:
                future.add_done_callback(lambda _: bar.update())
            timed = [f.result() for f in futures]
    bar.close()
    seconds = time.perf_counter() - start
    runs = [{**job, "seconds": wall, "cpu_seconds": cpu, "log": log}
            for job, (log, wall, cpu) in zip(todo, timed, strict=True)]
    results = round_floats({
        "experiment": name, "description": module.DESCRIPTION, "quick": quick,
        "config": dataclasses.asdict(config), "seeds": seeds, "seconds": seconds,
        "cpu_seconds": sum(r["cpu_seconds"] for r in runs), "jobs": jobs,
        "environment": _environment(), "runs": runs,
        "summary": module.summarize(config, runs)})
    if save if save is not None else not quick:
        RESULTS.mkdir(exist_ok=True)
        results_path(name).write_text(_dumps(results))
    return results


def _dumps(results: dict) -> str:
    """JSON, indented, with each list of numbers on one line (a short file, readable diffs)."""
    text = json.dumps(results, indent=1)
    flat = re.compile(r"\[\s*((?:-?[\d.e+-]+|null)(?:,\s*(?:-?[\d.e+-]+|null))*)\s*\]")
    return flat.sub(lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]",
                    text) + "\n"


def load(name: str) -> dict:
    """The stored results of experiment ``name`` (``results/NAME.json``)."""
    path = results_path(name)
    if not path.exists():
        raise FileNotFoundError(f"no stored results for {name!r} at {path}: run "
                                f"'python -m sseq.experiments {name}' first")
    return json.loads(path.read_text())


def prefix(name: str, *, which: int = 0, steps: int | None = None) -> dict:
    """Re-run the first steps of stored run number ``which`` and return both logs.

    Returns:
        ``{"job": ..., "steps": ..., "stored": {key: [...]}, "rerun": {key: [...]}}``: the
        stored log cut to the records of the first ``steps`` (the module's ``PREFIX_STEPS``)
        steps, and the re-run's, rounded alike.
    """
    module, stored = _module(name), load(name)
    steps = module.PREFIX_STEPS if steps is None else steps
    config = module.Config(**{k: tuple(v) if isinstance(v, list) else v
                              for k, v in stored["config"].items()})
    run_ = stored["runs"][which]
    job = {k: v for k, v in run_.items() if k not in ("log", "seconds", "cpu_seconds")}
    log = round_floats(_run_one(name, config, job, steps=steps))
    rerun = {k: log[k] for k in module.RECORDS}
    n = len(rerun[module.RECORDS[0]])
    return {"job": job, "steps": steps, "rerun": rerun,
            "stored": {k: run_["log"][k][:n] for k in module.RECORDS}}
