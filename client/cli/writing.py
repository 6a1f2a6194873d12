"""Writing a run's result into the SCM database while its stream arrives.

The server announces the finished run before its first result chunk (the
results header), so the connector opens the write's transaction then and
writes every chunk as it comes (:class:`connector.writer.ResultWrite`):
streaming back and writing overlap, and the connector holds a few chunks at
a time, never the plan. Nothing is visible before the commit; a stream that
breaks off rolls the write back, and the previous plan stays current.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

import sqlalchemy as sa

from masterplan.connector.schema import create_result_tables
from masterplan.connector.writer import (
    ResultWrite,
    RunMode,
    RunRecord,
    WriteReport,
    prepare_write,
)
from masterplan.contract.coded import CodedTable
from masterplan.contract.tables import PLAN_OUTPUT_TABLES
from masterplan.v1 import planning_pb2

__all__ = ["WriteAsItArrives"]


class WriteAsItArrives:
    """A :class:`~masterplan.client.client.ResultSink` that writes into the
    result tables, in one transaction, as the chunks arrive.

    Use it as a context manager: leaving the block without :meth:`commit`
    rolls back whatever was written.

    Args:
        engine: Engine of the results database.
        run_id, plan_id, mode, plan_date, started_at: The ``plan_runs`` row's
            record (finished when the run is announced).
        on_begin: Called with the rows the write will take (added and removed
            together) when the run is announced, for progress displays.
        on_rows: Called with a table name and a row count per batch written.
    """

    def __init__(
        self,
        engine: sa.Engine,
        *,
        run_id: str,
        plan_id: str,
        mode: RunMode,
        plan_date: dt.date,
        started_at: dt.datetime,
        on_begin: Callable[[int], None] | None = None,
        on_rows: Callable[[str, int], None] | None = None,
    ) -> None:
        self.engine = engine
        self.run_id, self.plan_id, self.mode = run_id, plan_id, mode
        self.plan_date, self.started_at = plan_date, started_at
        self.on_begin, self.on_rows = on_begin, on_rows
        self._write: ResultWrite | None = None
        #: When the run was announced (``time.perf_counter``): planning was over.
        self.begun_at: float | None = None
        #: Text comes coded (:class:`~masterplan.client.client.ResultSink`):
        #: PostgreSQL's binary ``COPY`` encodes each chunk's distinct values
        #: once, and the other databases' writes check and gather them once
        #: (:func:`~masterplan.connector.columns.batch_values`).
        self.accepts_coded_text = True
        # Made ready while the server plans, rather than at the first chunk.
        prepare_write(engine)

    def __enter__(self) -> WriteAsItArrives:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def begin(self, run: planning_pb2.PlanRun) -> None:
        """Open the transaction for the announced ``run``, once the result
        tables that are missing are created (the connector owns them)."""
        self.begun_at = time.perf_counter()
        create_result_tables(self.engine)
        record = RunRecord(
            run_id=self.run_id,
            plan_id=self.plan_id,
            # How the plan was made: a net change the server could not make
            # (SPEC §6) was planned as a regeneration, and its run says why.
            mode="regeneration" if run.fallback_reason else self.mode,
            plan_date=self.plan_date,
            started_at=self.started_at,
            finished_at=dt.datetime.now(dt.UTC),
        )
        write = ResultWrite(
            self.engine,
            record,
            plan_counts={name: int(run.row_counts.get(name, 0)) for name in PLAN_OUTPUT_TABLES},
            rows_added=int(run.rows_added),
            base_run_id=run.base_run_id or None,
            rows_removed=int(run.rows_removed),
            on_rows=self.on_rows,
        )
        self._write = write.__enter__()
        if self.on_begin is not None:
            self.on_begin(int(run.rows_added) + int(run.rows_removed))

    def _open(self) -> ResultWrite:
        if self._write is None:
            raise RuntimeError("result rows arrived before the run was announced")
        return self._write

    def removed(self, table: str, rows: CodedTable) -> None:
        self._open().remove(table, rows)

    def added(self, table: str, rows: CodedTable) -> None:
        self._open().add(table, rows)

    def commit(self) -> WriteReport:
        """Make the run current, once its stream ended with the summary."""
        report = self._open().commit()
        self.close()
        return report

    def close(self) -> None:
        """Roll back what is not committed; idempotent."""
        write, self._write = self._write, None
        if write is not None:
            write.__exit__(None, None, None)
