"""interrupts.deferred(): the CLI's Ctrl-C / SIGTERM held back for a block in the main thread
(raised at its end), never held by a worker thread's block."""
from __future__ import annotations

import os
import signal
import sys
import threading
import time

import pytest

from mediatools import interrupts


@pytest.fixture
def cli_handler():
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers can only be set in the main thread")

    def handler(signum, frame):  # noqa: ANN001 - what the CLI installs
        if interrupts.note():
            raise KeyboardInterrupt
    old = signal.signal(signal.SIGINT, handler)
    yield
    signal.signal(signal.SIGINT, old)
    interrupts._pending = interrupts._held = False


def test_held_in_the_block_and_raised_at_its_end(cli_handler):
    seen = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts.deferred():
            with interrupts.deferred():      # nested: raised only when the outer block ends
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)
                seen.append("inner")
            seen.append("outer")
    assert seen == ["inner", "outer"]


def test_a_worker_threads_block_holds_nothing(cli_handler):
    started, done = threading.Event(), []

    def worker():
        with interrupts.deferred():
            started.set()
            time.sleep(0.5)
        done.append(True)
    t = threading.Thread(target=worker)
    t.start()
    started.wait()
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1.0)                      # raised at once in the main thread, not after the worker
    assert not done
    t.join()
    assert done


def test_an_interrupt_held_in_a_failing_block_is_still_raised(cli_handler):
    with pytest.raises(KeyboardInterrupt) as got:
        with interrupts.deferred():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            raise OSError("disk full")
    assert isinstance(got.value.__context__, OSError) and not interrupts._held
    with interrupts.deferred():   # nothing stale left for the next block
        pass


@pytest.fixture
def cli_handlers():
    """The CLI's handlers as installed (SIGINT raising through note(frame), SIGALRM's retry)."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers can only be set in the main thread")

    def handler(signum, frame):  # noqa: ANN001
        if interrupts.note(frame):
            raise KeyboardInterrupt
    old = signal.signal(signal.SIGINT, handler)
    old_alrm = signal.getsignal(signal.SIGALRM)
    hooks = sys.unraisablehook, sys.excepthook
    interrupts.install()
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGINT, old)
    signal.signal(signal.SIGALRM, old_alrm)
    sys.unraisablehook, sys.excepthook = hooks
    interrupts._pending = interrupts._held = False
    interrupts._retrying = None


def _frame_in_lock_code():
    """The innermost frame of a thread waiting in threading.Event.wait (threading.py)."""
    ev = threading.Event()
    t = threading.Thread(target=ev.wait, daemon=True)
    t.start()
    time.sleep(0.05)
    return ev, t, sys._current_frames()[t.ident]


def test_not_raised_inside_the_standard_librarys_lock_code_but_a_moment_later(cli_handlers):
    """An interrupt raised in threading.Condition.__enter__ just after its lock is taken left
    the lock held: the encoder's feeding thread and then the cleanup waited on it for ever
    (an interrupted mix hung until the watchdog's 30 s; CI saw it once). In lock code the
    handler does not raise; SIGALRM tries again a moment later, in the caller's own code."""
    ev, t, frame = _frame_in_lock_code()
    assert frame.f_code.co_filename == threading.__file__
    try:
        assert interrupts.note(frame) is False and interrupts._retrying is not None
        with pytest.raises(KeyboardInterrupt):
            for _ in range(200):          # this frame is the test's: the retry raises here
                time.sleep(0.005)
        assert interrupts._retrying is None and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    finally:
        ev.set()
        t.join()


def test_a_wait_blocked_in_lock_code_is_interrupted_after_a_while(cli_handlers):
    """A main thread blocked in a lock for long (a queue that does not drain) still gets its
    interrupt, RETRY_FOR_S later: a blocked acquire is safe to leave."""
    ev = threading.Event()
    threading.Timer(0.05, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        ev.wait(10)
    assert interrupts.RETRY_FOR_S - 0.05 < time.monotonic() - t0 - 0.05 < interrupts.RETRY_FOR_S + 1.0


def test_in_own_code_it_is_raised_at_once(cli_handlers):
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(100):
            time.sleep(0.001)
    assert interrupts._retrying is None


CHILD = """
import logging, sys, time
import mediatools.cli as mc
mc.INTERRUPT_GRACE_S = 2.0

@mc.cli.command("spam")
def spam():
    print("ready", flush=True)
    try:
        while True:                      # until stderr, a pipe nobody reads, is full
            logging.getLogger("mediatools.spam").warning("x" * 200)
    finally:
        time.sleep(1000)                 # a cleanup that never ends

sys.argv = ["mediatools", "spam"]
mc.main()
"""


def test_the_watchdog_exits_even_when_stderr_does_not_drain(tmp_path):
    """Its message went through a blocking write to a full pipe, before os._exit: the process
    then never exited (found by a review session)."""
    import subprocess
    import sys
    p = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        assert p.stdout.readline().strip() == b"ready"
        time.sleep(1.5)                  # the pipe is full by now; the main thread blocks in write
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=15) == 130
    finally:
        p.kill()
        p.wait()


LATE_RETRY = """
import signal, sys, time
import mediatools.cli as mc
from mediatools import interrupts

@mc.cli.command("late")
def late():
    # as note() does for a SIGTERM that lands in lock code just before the command returns
    interrupts._retrying = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, 0.2)

code = mc.main(["late"])
time.sleep(0.6)        # where interpreter teardown runs: the retry must not fire here
print("alive", code, signal.getitimer(signal.ITIMER_REAL), flush=True)
"""


def test_a_retry_still_pending_when_the_command_ends_is_cancelled(tmp_path):
    """A SIGTERM put off in lock code near the end armed SIGALRM; it fired after the command had
    finished (after teardown restored SIGALRM's default: a finished run died with exit 142)."""
    import subprocess
    import sys
    p = subprocess.run([sys.executable, "-c", LATE_RETRY], capture_output=True, text=True, timeout=60,
                       cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert (p.returncode, p.stdout.strip()) == (0, "alive 0 (0.0, 0.0)"), p.stderr
