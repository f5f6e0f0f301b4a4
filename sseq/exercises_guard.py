"""Running a learner's function without trusting it: the machinery under ``sseq.exercises``.

:func:`run_learner` calls the learner's function once and says what happened, as an
:class:`Outcome`:

* under a **time limit** that an ``except Exception`` cannot swallow (the alarm raises a
  ``BaseException`` and, if caught anyway, fires again every 50 ms until the call ends), and
  that keeps any outer ``SIGALRM`` timer (pytest-timeout, a notebook's own alarm) running;
* on **fresh copies** of the inputs, so that the learner cannot change the reference's
  inputs, and a function that modifies its arguments in place is caught;
* watching for calls into the book's **own reference** (by code object, so a renamed import
  is caught as well), and optionally counting the lines of the learner's own Python code that
  run (an exercise that forbids a Python loop sets a budget).

Without POSIX timers (Windows) or outside the main thread the call runs in a helper thread
that is abandoned at the time limit.
"""

from __future__ import annotations

import copy
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["Outcome", "TimeLimitExceeded", "run_learner", "same_value", "time_limit"]

_REFIRE_S = 0.05  # after the deadline the alarm fires again this often until the call ends


class TimeLimitExceeded(BaseException):  # noqa: N818 (a BaseException: `except Exception` must not catch it)
    """Raised inside the learner's code when the time limit is reached."""


class _TooManyLines(BaseException):  # noqa: N818
    pass


class time_limit:  # noqa: N801 (used as a context manager, like contextlib's)
    """Raise :class:`TimeLimitExceeded` in the main thread after ``seconds``.

    An outer interval timer (``signal.setitimer(ITIMER_REAL, ...)`` with a ``SIGALRM``
    handler) keeps its deadline: if it falls inside the block its handler is called then, and
    the remaining time is re-armed on exit. ``seconds=None`` sets no limit.
    """

    def __init__(self, seconds: float | None):
        self.seconds = seconds

    @staticmethod
    def usable() -> bool:
        main = threading.current_thread() is threading.main_thread()
        return hasattr(signal, "setitimer") and main

    def __enter__(self):
        if self.seconds is None or not self.usable():
            self._armed = False
            return self
        self._armed, self._active = True, True
        now = time.monotonic()
        self._deadline = now + self.seconds
        self._old_handler = signal.getsignal(signal.SIGALRM)
        delay, self._old_interval = signal.getitimer(signal.ITIMER_REAL)
        self._outer = now + delay if delay > 0 else None
        signal.signal(signal.SIGALRM, self._on_alarm)
        self._arm()
        return self

    def _arm(self) -> None:
        now = time.monotonic()
        due = self._deadline if now < self._deadline else now + _REFIRE_S
        if self._outer is not None:
            due = min(due, self._outer)
        signal.setitimer(signal.ITIMER_REAL, max(due - now, 1e-6))

    def _on_alarm(self, signum, frame) -> None:
        if not self._active:
            return
        now = time.monotonic()
        if self._outer is not None and now >= self._outer - 1e-4:
            interval = self._old_interval
            self._outer = self._outer + interval if interval > 0 else None
            self._arm()
            _deliver(self._old_handler, signum, frame)
        if now >= self._deadline - 1e-4:
            self._arm()
            raise TimeLimitExceeded(self.seconds)
        self._arm()

    def __exit__(self, *exc) -> bool:
        if not self._armed:
            return False
        while True:  # a last alarm may land in here: finish the clean-up all the same
            try:
                self._active = False
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, self._old_handler
                              if self._old_handler is not None else signal.SIG_DFL)
                if self._outer is not None:
                    left = max(self._outer - time.monotonic(), 1e-6)
                    signal.setitimer(signal.ITIMER_REAL, left, self._old_interval)
                return False
            except TimeLimitExceeded:
                continue


def _deliver(handler, signum, frame) -> None:
    """Run the outer SIGALRM handler as the signal would have."""
    if callable(handler):
        handler(signum, frame)
    elif handler in (signal.SIG_DFL, None):  # the default action ends the process
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.raise_signal(signal.SIGALRM)


@dataclass
class Outcome:
    """What one call of the learner's function did.

    ``kind`` is ``"returned"`` (``value`` holds the result), ``"raised"`` (``error`` holds
    ``"Type: message"``), ``"unanswered"`` (the stub's ``NotImplementedError``),
    ``"timeout"`` or ``"looped"`` (more lines of its own Python than the budget). ``reference``
    names a book function it called; ``mutated`` names an argument it changed in place.
    """

    kind: str
    value: Any = None
    error: str = ""
    reference: str = ""
    mutated: str = ""
    lines: int = 0
    notes: list[str] = field(default_factory=list)


def qualified_name(fn: Any) -> str:
    module = getattr(fn, "__module__", None) or ""
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    return f"{module}.{name}" if module else name


class _Watch:
    """A profile hook that notes calls into forbidden functions, and optionally a line counter."""

    def __init__(self, forbidden: Iterable[Callable], max_lines: int | None):
        self.codes, self.objects = {}, {}
        for fn in forbidden:
            code = getattr(getattr(fn, "__wrapped__", fn), "__code__", None)
            if code is not None:
                self.codes[code] = qualified_name(fn)
            else:
                self.objects[id(fn)] = qualified_name(fn)
        self.hit = ""
        self.max_lines, self.lines = max_lines, 0
        self.library = tuple(str(p) for p in {Path(sys.prefix), Path(sys.base_prefix),
                                              Path(__file__).resolve().parent})

    def profile(self, frame, event, arg):
        if self.hit:
            return
        if event == "call":
            self.hit = self.codes.get(frame.f_code, "")
        elif event == "c_call":
            self.hit = self.objects.get(id(arg), "")

    def trace(self, frame, event, arg):
        filename = frame.f_code.co_filename
        if filename.startswith(self.library) or filename.startswith("<frozen"):
            return None
        return self._count

    def _count(self, frame, event, arg):
        if event == "line":
            self.lines += 1
            if self.lines > self.max_lines:
                raise _TooManyLines
        return self._count

    def __enter__(self):
        self._old_profile, self._old_trace = sys.getprofile(), sys.gettrace()
        sys.setprofile(self.profile)
        if self.max_lines is not None:
            sys.settrace(self.trace)
        return self

    def __exit__(self, *exc):
        sys.setprofile(self._old_profile)
        if self.max_lines is not None:
            sys.settrace(self._old_trace)
        return False


def same_value(a: Any, b: Any) -> bool:
    """Exact equality of two inputs (NaN equals NaN), used to notice in-place changes."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            return False
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        a, b = a.detach().resolve_conj().resolve_neg(), b.detach().resolve_conj().resolve_neg()
        return bool(torch.equal(a, b) or ((a == b) | (a != a) & (b != b)).all())
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return False
        nan = a.dtype.kind in "fc"
        return a.shape == b.shape and a.dtype == b.dtype and bool(np.array_equal(a, b, nan))
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    try:
        return bool(a == b) or (a != a and b != b)
    except Exception:  # an object without a usable ==: assume unchanged
        return True


def _call(fn, args, kwargs, watch, seconds):
    """Call under the watch and the time limit; a helper thread where signals are unusable."""
    if time_limit.usable() or seconds is None:
        with time_limit(seconds), watch:
            return fn(*args, **kwargs)
    box: dict[str, Any] = {}

    def target():
        try:
            with watch:
                box["value"] = fn(*args, **kwargs)
        except BaseException as err:  # carried to the caller's thread
            box["error"] = err

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise TimeLimitExceeded(seconds)
    if "error" in box:
        raise box["error"]
    return box["value"]


def run_learner(fn: Callable, args: tuple = (), kwargs: dict | None = None, *,
                time_limit_s: float | None = 10.0, forbidden: Iterable[Callable] = (),
                max_lines: int | None = None, arg_names: tuple[str, ...] = ()) -> Outcome:
    """Call ``fn(*args, **kwargs)`` on copies of the inputs and report what happened.

    Args:
        fn: the learner's function.
        args, kwargs: the case's inputs; the learner receives deep copies.
        time_limit_s: seconds before the call is stopped (``None``: no limit).
        forbidden: functions the learner must not call (the book's own implementation).
        max_lines: the most lines of the learner's own Python the call may run, or ``None``.
        arg_names: names of the positional arguments, for the message about in-place changes.

    Returns:
        An :class:`Outcome`.
    """
    kwargs = kwargs or {}
    given_args, given_kwargs = copy.deepcopy(args), copy.deepcopy(kwargs)
    watch = _Watch(forbidden, max_lines)
    try:
        value = _call(fn, given_args, given_kwargs, watch, time_limit_s)
        outcome = Outcome("returned", value)
    except TimeLimitExceeded:
        outcome = Outcome("timeout", error=f"{time_limit_s:g}")
    except _TooManyLines:
        outcome = Outcome("looped")
    except NotImplementedError:
        outcome = Outcome("unanswered")
    except Exception as err:  # a learner's bug must not crash the checker
        outcome = Outcome("raised", error=f"{type(err).__name__}: {err}")
    outcome.reference, outcome.lines = watch.hit, watch.lines
    outcome.mutated = _changed(args, given_args, kwargs, given_kwargs, arg_names)
    return outcome


def _changed(args, given_args, kwargs, given_kwargs, names) -> str:
    for i, (before, after) in enumerate(zip(args, given_args, strict=True)):
        if not same_value(before, after):
            return names[i] if i < len(names) else f"argument {i + 1}"
    for key in kwargs:
        if not same_value(kwargs[key], given_kwargs.get(key)):
            return key
    return ""
