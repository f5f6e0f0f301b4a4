"""The guard under the checker (sseq.exercises_guard), piece by piece: the time limit and the
outer SIGALRM timers it must leave intact, the helper-thread path used outside the main thread,
the in-place change detector, and the watch for the book's own functions.

Every test that could hang runs under pytest-timeout's thread method (the guard itself uses
SIGALRM), and every test that touches SIGALRM restores the handler and the timer it found."""

from __future__ import annotations

import signal
import threading
import time

import numpy as np
import pytest
import torch

import sseq.exercises_guard as guard
from sseq.exercises_guard import (
    TimeLimitExceeded,
    qualified_name,
    run_learner,
    same_value,
    time_limit,
)

posix_timers = pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="POSIX timers")


@pytest.fixture
def alarm_log():
    """A recording SIGALRM handler, installed for the test; the previous handler and a cleared
    timer are restored afterwards whatever the test did."""
    fired: list[float] = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: fired.append(time.monotonic()))
    try:
        yield fired
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def in_a_thread(fn):
    """Run ``fn()`` in an ordinary (non-daemon) thread, as a grader's worker would, and return
    its result: the guard then cannot use signals and calls the learner in a helper thread."""
    box = {}
    worker = threading.Thread(target=lambda: box.setdefault("r", fn()))
    worker.start()
    worker.join(10)
    assert not worker.is_alive()
    return box["r"]


# --- the time limit ---------------------------------------------------------------------------


@posix_timers
@pytest.mark.timeout(10, method="thread")
def test_the_limit_is_one_alarm_at_the_deadline_and_says_its_seconds(alarm_log):
    """Protects the time limit itself: the alarm is armed for the deadline (not a 50 ms poll
    that wakes the learner's code twenty times a second), the exception carries the limit,
    and afterwards the caller's handler is back and no timer is left running."""
    before = signal.getsignal(signal.SIGALRM)
    start = time.monotonic()
    with time_limit(5.0):
        left = signal.getitimer(signal.ITIMER_REAL)[0]
    assert 4.5 < left <= 5.0
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)

    with pytest.raises(TimeLimitExceeded) as stop, time_limit(0.1):
        while True:
            time.sleep(0.005)
    assert stop.value.args == (0.1,)
    assert time.monotonic() - start < 2.0
    assert signal.getsignal(signal.SIGALRM) is before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert alarm_log == []


@posix_timers
@pytest.mark.timeout(10, method="thread")
def test_no_limit_arms_nothing_and_lets_errors_through(alarm_log):
    """Protects ``seconds=None`` (no limit): nothing is armed, the block's own exceptions are
    not swallowed, and the learner's answer comes back (``run_learner(time_limit_s=None)``)."""
    with pytest.raises(ValueError, match="learner's bug"), time_limit(None):
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
        raise ValueError("learner's bug")
    assert run_learner(lambda x: 2 * x, (3,), time_limit_s=None).value == 6

    def broken(x):
        raise ValueError("learner's bug")

    out = run_learner(broken, (3,), time_limit_s=None)
    assert (out.kind, out.error) == ("raised", "ValueError: learner's bug")
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert alarm_log == []


@posix_timers
@pytest.mark.timeout(10, method="thread")
def test_a_quiet_outer_handler_is_not_called_by_the_limit(alarm_log):
    """Protects a program's own SIGALRM handler when no timer of its own is running: the
    checker's limit must not call it (it would run code that expects its own alarm)."""
    assert run_learner(lambda x: time.sleep(0.1) or 2 * x, (1,), time_limit_s=5.0).value == 2
    assert alarm_log == []
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


@posix_timers
@pytest.mark.timeout(10, method="thread")
def test_an_outer_alarm_due_after_the_limit_waits_for_its_time(alarm_log):
    """Protects an outer one-shot timer due after the checker's limit expires: its handler
    runs at its own time, not early when the limit fires."""
    start = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, 0.35)
    with pytest.raises(TimeLimitExceeded), time_limit(0.05):
        while True:
            time.sleep(0.005)
    assert alarm_log == []  # stopped at 0.05 s; the outer alarm is still 0.3 s away
    time.sleep(max(signal.getitimer(signal.ITIMER_REAL)[0], 0) + 0.15)
    assert len(alarm_log) == 1 and alarm_log[0] - start == pytest.approx(0.35, abs=0.15)


@posix_timers
@pytest.mark.timeout(10, method="thread")
def test_an_outer_alarm_before_the_deadline_does_not_stop_the_learner(alarm_log):
    """Protects the learner's time: an outer alarm that falls inside the block calls its own
    handler and nothing more; it does not end the call before the checker's deadline."""
    signal.setitimer(signal.ITIMER_REAL, 0.05)
    out = run_learner(lambda x: time.sleep(0.2) or 2 * x, (1,), time_limit_s=0.6)
    assert (out.kind, out.value) == ("returned", 2)
    assert len(alarm_log) == 1


@posix_timers
@pytest.mark.timeout(10, method="thread")
def test_a_stale_copy_of_the_guards_handler_is_inert(alarm_log):
    """Protects code that saved the SIGALRM handler inside the block and restores it later (a
    nested alarm helper in the learner's notebook): once the block has ended, the guard's
    handler does nothing, neither raising in unrelated code nor arming a timer."""
    with time_limit(0.05):
        stale = signal.getsignal(signal.SIGALRM)
    time.sleep(0.08)  # past the deadline
    assert stale(signal.SIGALRM, None) is None
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert alarm_log == []


@posix_timers
@pytest.mark.timeout(10, method="thread")
def test_a_last_alarm_during_the_clean_up_does_not_stop_it(alarm_log, monkeypatch):
    """Protects the clean-up on exit: if the limit's alarm lands while the guard is undoing its
    timer (simulated: the first call to setitimer on exit raises TimeLimitExceeded, as the
    alarm's handler would), the clean-up still restores the caller's handler and timer."""
    before = signal.getsignal(signal.SIGALRM)
    real = signal.setitimer
    landed = []

    def alarm_lands_once(*args):
        if not landed:
            landed.append(args)
            raise TimeLimitExceeded(1.0)
        return real(*args)

    with time_limit(1.0):
        monkeypatch.setattr(signal, "setitimer", alarm_lands_once)
    monkeypatch.undo()
    assert landed == [(signal.ITIMER_REAL, 0)]
    assert signal.getsignal(signal.SIGALRM) is before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


@posix_timers
def test_a_handler_set_outside_python_gets_the_default_back(monkeypatch):
    """Protects a SIGALRM handler that Python did not install (``signal.getsignal`` answers
    None): on exit the guard puts the default action back instead of failing."""
    previous = signal.getsignal(signal.SIGALRM)
    monkeypatch.setattr(signal, "getsignal", lambda signum: None)
    try:
        with time_limit(1.0):
            pass
        monkeypatch.undo()
        assert signal.getsignal(signal.SIGALRM) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGALRM, previous)


def test_the_default_action_of_an_outer_alarm_is_taken(monkeypatch):
    """Protects an outer timer whose handler is the default action (or one Python does not
    know, None): the guard passes the alarm on as the signal would have, which ends the
    process, by restoring the default action and raising SIGALRM (recorded here instead)."""
    previous = signal.getsignal(signal.SIGALRM)
    raised = []
    monkeypatch.setattr(signal, "raise_signal",
                        lambda signum: raised.append((signum, signal.getsignal(signum))))
    try:
        for handler in (signal.SIG_DFL, None):
            signal.signal(signal.SIGALRM, signal.SIG_IGN)
            guard._deliver(handler, signal.SIGALRM, None)
        assert raised == [(signal.SIGALRM, signal.SIG_DFL)] * 2
        guard._deliver(signal.SIG_IGN, signal.SIGALRM, None)  # ignored: nothing happens
        assert len(raised) == 2
    finally:
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.timeout(10, method="thread")
def test_a_timeout_outcome_names_the_limit():
    """Protects the learner's message "still running after N s": the outcome of a stopped
    call carries the limit it ran under."""
    def forever(x):
        while True:
            time.sleep(0.005)

    out = run_learner(forever, (1,), time_limit_s=0.15)
    assert (out.kind, out.error) == ("timeout", "0.15")


def test_the_default_limit_is_ten_seconds(monkeypatch):
    """Protects the documented default of ``run_learner``: a call is stopped after 10 s."""
    seen = []
    monkeypatch.setattr(guard, "_call",
                        lambda fn, args, kwargs, watch, seconds: seen.append(seconds) or 1)
    assert run_learner(lambda: 1).value == 1
    assert seen == [10.0]


# --- outside the main thread: the helper thread -------------------------------------------------


@pytest.mark.timeout(20, method="thread")
def test_outside_the_main_thread_every_outcome_comes_back():
    """Protects the helper-thread path (a grader that runs checks in a worker thread): the
    answer (with keyword arguments), the learner's exception, the stub, the line budget and a
    forbidden call all come back exactly as in the main thread."""
    def book(x):
        return x

    def answer(x, *, scale):
        return scale * x

    def broken(x):
        raise ValueError("bad shape")

    def stub(x):
        raise NotImplementedError

    def loop(x):
        for _ in range(100):
            x = x + 1
        return x

    out = in_a_thread(lambda: run_learner(answer, (2,), {"scale": 3}, time_limit_s=5.0))
    assert (out.kind, out.value, out.error) == ("returned", 6, "")
    out = in_a_thread(lambda: run_learner(broken, (2,), time_limit_s=5.0))
    assert (out.kind, out.error) == ("raised", "ValueError: bad shape")
    assert in_a_thread(lambda: run_learner(stub, (2,), time_limit_s=5.0)).kind == "unanswered"
    out = in_a_thread(lambda: run_learner(loop, (2,), time_limit_s=5.0, max_lines=50))
    assert out.kind == "looped"
    out = in_a_thread(lambda: run_learner(lambda x: book(x), (2,), time_limit_s=5.0,
                                          forbidden=[book]))
    assert (out.kind, out.value, out.reference) == ("returned", 2, qualified_name(book))


@pytest.mark.timeout(20, method="thread")
def test_an_abandoned_learner_thread_does_not_keep_python_alive():
    """Protects the end of a grading session: a call stopped by the time limit in a helper
    thread is abandoned as a daemon thread, so it cannot keep the interpreter (a notebook
    kernel, a grading script) from exiting, even when the caller's thread is not a daemon.
    The outcome, read while that thread still runs the learner's Python, names no reference."""
    stop, threads = threading.Event(), []

    def forever(x):
        threads.append(threading.current_thread())
        while not stop.is_set():  # Python calls only, no C call, until stopped
            pass

    try:
        out = in_a_thread(lambda: run_learner(forever, (1,), time_limit_s=0.1,
                                              forbidden=[torch.exp]))
        assert (out.kind, out.error, out.reference) == ("timeout", "0.1", "")
        assert len(threads) == 1 and threads[0].daemon
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)


# --- in-place changes ---------------------------------------------------------------------------


def test_an_in_place_change_is_named_by_argument():
    """Protects the message about an input changed in place: the argument's name when known,
    else its position counted from 1, else the keyword; the caller's inputs stay untouched
    (keyword arguments are deep-copied too)."""
    def bump_second(a, b):
        b += 1
        return a

    def bump_kw(a, *, x):
        x[0] += 1
        return a

    def bump_first(a, b):
        a += 1
        return a

    a, b = torch.zeros(2), torch.zeros(2)
    assert run_learner(bump_second, (a, b), arg_names=("a",)).mutated == "argument 2"
    assert run_learner(bump_second, (a, b), arg_names=("a", "b")).mutated == "b"
    assert run_learner(bump_first, (a, b)).mutated == "argument 1"
    x = torch.zeros(2)
    out = run_learner(bump_kw, (a,), {"x": x})
    assert out.mutated == "x" and x.tolist() == [0.0, 0.0]
    assert a.tolist() == b.tolist() == [0.0, 0.0]
    assert run_learner(lambda a, *, x: a + x, (a,), {"x": x}).mutated == ""


class _Incomparable:
    def __eq__(self, other):
        raise RuntimeError("no ==")

    __hash__ = object.__hash__


@pytest.mark.parametrize(("a", "b", "same"), [
    (np.array([1.0]), [1.0], False), ([1.0], np.array([1.0]), False),
    (np.array([1.0, 2.0]), (1.0, 2.0), False), (np.array(1.0), 1.0, False),
    ([1.0], 1.0, False), (1.0, [1.0], False), ((1, 2), "ab", False),
    ({"a": 1}, 1, False), (1, {"a": 1}, False),
    (float("nan"), 1.0, False), (1.0, float("nan"), False),
    (_Incomparable(), _Incomparable(), True),
], ids=lambda v: type(v).__name__)
def test_same_value_across_types(a, b, same):
    """Protects the in-place change detector where the kinds differ: an array and a list or a
    number are different values (never compared element-wise into "equal"), a container and a
    scalar are different, NaN equals only NaN, and an object without a working ``==`` is
    assumed unchanged rather than crashing the checker."""
    assert same_value(a, b) is same


# --- the watch ----------------------------------------------------------------------------------


def test_the_watch_accuses_only_calls_and_names_methods():
    """Protects the watch against false accusations and crashes: looking up a forbidden C
    function without calling it is not a call; a forbidden tensor method (which has no
    ``__module__``) is named as PyTorch names it."""
    def pick():
        return torch.exp  # looked up, never called

    def answer(x):
        pick()
        return 2 * x

    out = run_learner(answer, (torch.ones(1),), forbidden=[torch.exp])
    assert (out.kind, out.reference) == ("returned", "")
    assert qualified_name(torch.Tensor.cumsum) == "TensorBase.cumsum"
    out = run_learner(lambda x: x * 2, (torch.ones(1),), forbidden=[torch.Tensor.cumsum])
    assert (out.kind, out.reference) == ("returned", "")

