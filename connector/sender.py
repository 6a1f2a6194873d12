"""A write's statements run in order on a thread of their own.

A PostgreSQL write makes each table's indexes again once its rows are in
(``writer._drop_indexes_for_load``): 0.3 s for the planned orders and 0.7 s
for the pegging of the 100k-SKU benchmark, in which the connector used to
wait, and the server, its stream held up, too, while one of two cores
idled. Run on a thread, those statements and the ``COPY`` payloads go to
the database in the order they were submitted, while the caller decodes
the next chunks and makes their payloads (``docs/performance.md``).

What waits in the queue is bounded in bytes (:data:`QUEUED_BYTES`): the
connector's memory stays a few chunks', whatever the plan's size.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

__all__ = ["QUEUED_BYTES", "Sender"]

#: Most payload bytes queued before :meth:`Sender.submit` waits: about a
#: dozen 32,768-row chunks of the benchmark, as many as the connector makes
#: while the database makes the planned orders' indexes again.
QUEUED_BYTES = 48 << 20


class Sender:
    """Runs submitted tasks one after another on a thread, in order.

    The first task that raises stops the rest: they are skipped, and the
    exception is raised in the caller's thread by the next :meth:`submit`
    or :meth:`wait`. The caller must not use the connection the tasks use
    until :meth:`wait` or :meth:`close` returned.
    """

    def __init__(self, queued_bytes: int = QUEUED_BYTES) -> None:
        self.queued_bytes = queued_bytes
        #: (task, bytes it holds, whether it runs even after an error)
        self._tasks: queue.SimpleQueue[tuple[Callable[[], None], int, bool] | None] = (
            queue.SimpleQueue()
        )
        self._room = threading.Condition()
        self._held = 0  # bytes of tasks submitted and not yet done
        self._error: BaseException | None = None
        self._dropping = False
        self._thread = threading.Thread(target=self._run, name="masterplan-write", daemon=True)
        self._thread.start()

    def submit(self, task: Callable[[], None], nbytes: int = 0) -> None:
        """Queue ``task``, which holds ``nbytes`` until it is done; wait while
        the tasks queued hold :attr:`queued_bytes` (a task larger than that
        is queued alone)."""
        with self._room:
            while self._held and self._held + nbytes > self.queued_bytes and self._error is None:
                self._room.wait()
            self._raise()
            self._held += nbytes
        self._tasks.put((task, nbytes, False))

    def wait(self) -> None:
        """Return once every task submitted is done; raise the first error."""
        if self._thread.is_alive():
            done = threading.Event()
            self._tasks.put((done.set, 0, True))
            done.wait()
        with self._room:
            self._raise()

    def close(self, abandon: bool = False) -> None:
        """Stop the thread once the tasks queued are done, or (``abandon``)
        skipped; the task running is let finish. Idempotent."""
        if not self._thread.is_alive():
            return
        self._dropping = abandon
        self._tasks.put(None)
        self._thread.join()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while (item := self._tasks.get()) is not None:
            task, nbytes, always = item
            try:
                if always or (self._error is None and not self._dropping):
                    task()
            except BaseException as exc:  # raised in the caller's thread
                self._error = exc
            finally:
                with self._room:
                    self._held -= nbytes
                    self._room.notify_all()
