"""interrupts.deferred(): the CLI's Ctrl-C / SIGTERM held back for a block in the main thread
(raised at its end), never held by a worker thread's block."""
from __future__ import annotations

import os
import signal
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
