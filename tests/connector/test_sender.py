"""The write's statement thread (connector.sender): order, bounded memory, errors."""

from __future__ import annotations

import threading
import time

import pytest

from masterplan.connector.sender import Sender


def test_tasks_run_in_the_order_submitted_on_another_thread() -> None:
    sender = Sender()
    ran: list[tuple[int, str]] = []
    for k in range(50):
        sender.submit(lambda k=k: ran.append((k, threading.current_thread().name)), 10)
    sender.wait()
    sender.close()
    assert [k for k, _ in ran] == list(range(50))
    assert {name for _, name in ran} == {"masterplan-write"}


def _submitted_within(sender: Sender, nbytes: int, seconds: float) -> bool:
    """Whether ``submit`` of a task holding ``nbytes`` returns within ``seconds``."""
    done = threading.Event()
    thread = threading.Thread(target=lambda: (sender.submit(lambda: None, nbytes), done.set()))
    thread.start()
    return done.wait(seconds)


def test_submit_waits_while_the_queued_tasks_hold_the_bound() -> None:
    """The connector's memory stays bounded: payloads beyond the bound wait
    for those before them to be sent."""
    sender = Sender(queued_bytes=100)
    release = threading.Event()
    sender.submit(release.wait, 60)  # running, and holding 60 bytes
    sender.submit(lambda: None, 40)  # 100: at the bound
    assert not _submitted_within(sender, 1, 0.3)
    release.set()
    sender.wait()
    # A task larger than the bound is queued when nothing else is.
    assert _submitted_within(sender, 500, 5)
    sender.wait()
    sender.close()


def test_the_first_error_skips_the_rest_and_is_raised_to_the_caller() -> None:
    sender = Sender()
    ran: list[int] = []

    def fail() -> None:
        raise ValueError("refused")

    sender.submit(lambda: ran.append(1))
    sender.submit(fail)
    sender.submit(lambda: ran.append(3))
    with pytest.raises(ValueError, match="refused"):
        sender.wait()
    with pytest.raises(ValueError, match="refused"):
        sender.submit(lambda: ran.append(4))
    sender.close()
    assert ran == [1]


def test_close_abandoning_lets_the_running_task_end_and_skips_the_queued() -> None:
    sender = Sender()
    started, release = threading.Event(), threading.Event()
    ran: list[str] = []

    def running() -> None:
        started.set()
        release.wait()
        ran.append("running")

    sender.submit(running)
    sender.submit(lambda: ran.append("queued"))
    started.wait()
    threading.Timer(0.2, release.set).start()
    t = time.perf_counter()
    sender.close(abandon=True)
    assert time.perf_counter() - t >= 0.1
    assert ran == ["running"]
    sender.close()  # idempotent
    sender.wait()  # nothing left: returns at once
