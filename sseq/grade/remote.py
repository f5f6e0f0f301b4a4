"""A learner's answer, read out of their kernel: values as data, functions as stand-ins.

:func:`read_answers` evaluates the answers' names in the learner's kernel and brings back
their values through :mod:`sseq.grade.wire`. A function stays in the kernel: the grader gets a
:class:`RemoteFunction`, which the checkers call like any other function (``check_function``
recognises it) and whose every call runs in the kernel, on a copy of the case, under the same
guards as in the notebook, its result coming back as data.
"""

from __future__ import annotations

from typing import Any

from sseq.exercises_guard import Outcome
from sseq.grade import wire
from sseq.grade.kernel import CellResult, KernelSession

__all__ = ["RemoteFunction", "read_answers"]

GRACE_S = 15.0  # at most this beyond a case's own time limit, before the grader stops the kernel
_KINDS = {"returned", "raised", "unanswered", "timeout", "looped"}


class RemoteFunction:
    """A learner's function that lives in their kernel; the checker calls it like any other."""

    def __init__(self, session: KernelSession, expression: str, name: str,
                 case_timeout: float | None = None):
        self.session, self.expression, self.__name__ = session, expression, name
        self.__qualname__ = name
        self.case_timeout = case_timeout

    def _sseq_run_case(self, args, kwargs, *, time_limit, max_lines, forbidden, arg_names
                       ) -> Outcome:
        if self.case_timeout is not None:
            time_limit = min(time_limit or self.case_timeout, self.case_timeout)
        request = {"expression": self.expression, "args": wire.encode(tuple(args)),
                   "kwargs": wire.encode(dict(kwargs)), "time_limit": time_limit,
                   "forbidden": list(forbidden), "max_lines": max_lines,
                   "arg_names": list(arg_names)}
        limit = time_limit or 60.0
        reply = self.session.probe("call", request, timeout=limit + min(GRACE_S, 3 + limit))
        if isinstance(reply, CellResult):
            if reply.status == "timeout":
                return Outcome("timeout", error=f"{time_limit:g}")
            if reply.status == "died":
                return Outcome("raised", error="the kernel died while running your function "
                                               "(os._exit, a crash, or out of memory)")
            return Outcome("raised", error=f"could not be run ({reply.detail})")
        try:
            value = wire.decode(reply["value"])
        except Exception as err:
            value = wire.Opaque("unreadable", f"(unreadable: {err})")
        kind = reply.get("kind") if reply.get("kind") in _KINDS else "raised"
        return Outcome(kind, value, str(reply.get("error", "")), str(reply.get("reference", "")),
                       str(reply.get("mutated", "")))

    def __call__(self, *args, **kwargs):
        outcome = self._sseq_run_case(args, kwargs, time_limit=10.0, max_lines=None,
                                      forbidden=(), arg_names=())
        if outcome.kind != "returned":
            raise RuntimeError(outcome.error or outcome.kind)
        return outcome.value


def read_answers(session, exprs: list[str], case_timeout: float | None = None
                  ) -> tuple[list[Any] | None, str]:
    reply = session.probe("capture", {"expressions": exprs}, timeout=60.0)
    if isinstance(reply, CellResult):
        return None, f"the answer could not be read ({reply.detail})"
    values, missing = [], []
    for expr, answer in zip(exprs, reply.get("answers", []), strict=False):
        if not answer.get("ok"):
            missing.append(f"{expr} ({answer.get('error', 'not found')})")
            continue
        d = answer["value"]
        if d.get("t") == "function":
            values.append(RemoteFunction(session, expr, str(d.get("name", expr)), case_timeout))
        else:
            try:
                values.append(wire.decode(d))
            except Exception as err:
                values.append(wire.Opaque("unreadable", f"(unreadable: {err})"))
    if missing or len(values) != len(exprs):
        return None, "not found in your notebook: " + "; ".join(missing or exprs)
    return values, ""
