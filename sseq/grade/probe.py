"""The grader's side inside a learner's kernel: read the answers, run the learner's function.

The grader executes one-line cells such as ``__import__("sseq.grade.probe").grade.probe
.capture(globals(), REQUEST)``. Each reads a JSON request, does its work in the learner's
namespace, and displays the result as JSON under :data:`MIME`, which the grader reads from
the cell's outputs. Nothing here decides a grade: the grader's own process does, with the
checker, on the data this module sends.
"""

from __future__ import annotations

import importlib
import json

from sseq.grade import wire

__all__ = ["MIME", "call", "capture"]

MIME = "text/x-sseq-grade"


def _emit(payload: dict) -> None:
    from IPython.display import display

    display({MIME: json.dumps(payload)}, raw=True)


def capture(namespace: dict, request: str) -> None:
    """Evaluate each answer expression of the request in the learner's namespace and send it."""
    req = json.loads(request)
    answers = []
    for expression in req["expressions"]:
        try:
            answers.append({"ok": True, "value": wire.encode(eval(expression, namespace))})  # noqa: S307
        except BaseException as err:  # a NameError says the answer is missing
            answers.append({"ok": False, "error": f"{type(err).__name__}: {err}"})
    _emit({"nonce": req["nonce"], "answers": answers})


def _resolve(dotted: str):
    module, _, name = dotted.rpartition(".")
    try:
        obj = importlib.import_module(module)
    except ImportError:
        head, _, attr = module.rpartition(".")
        obj = getattr(importlib.import_module(head), attr)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def call(namespace: dict, request: str) -> None:
    """Run the learner's function on one case, guarded as in the notebook, and send the outcome."""
    from sseq.exercises_guard import run_learner

    req = json.loads(request)
    fn = eval(req["expression"], namespace)  # noqa: S307 (the learner's own namespace)
    forbidden = []
    for dotted in req["forbidden"]:
        try:
            forbidden.append(_resolve(dotted))
        except (ImportError, AttributeError):
            continue
    outcome = run_learner(fn, wire.decode(req["args"]), wire.decode(req["kwargs"]),
                          time_limit_s=req["time_limit"], forbidden=forbidden,
                          max_lines=req["max_lines"], arg_names=tuple(req["arg_names"]))
    _emit({"nonce": req["nonce"], "kind": outcome.kind, "value": wire.encode(outcome.value),
           "error": outcome.error, "reference": outcome.reference, "mutated": outcome.mutated})
