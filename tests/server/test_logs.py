"""Log lines name the call: the formats of server.logs, and a real server's stderr."""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from masterplan.client import errors
from masterplan.client.client import MasterplanClient
from masterplan.server.logs import (
    ContextFilter,
    JsonFormatter,
    TextFormatter,
    bind,
    configure,
    current_context,
    error_fields,
    fields,
    log_context,
    scoped,
)
from tests.e2e.test_process_faults import big_tables

ROOT = Path(__file__).parents[2]
ADMIN = "an-admin-key-of-enough-length-123"
#: 2026-12-02T10:00:00.250Z
CREATED = 1796205600.25


def _record(message: str, level: int = logging.INFO, **extra: Any) -> logging.LogRecord:
    record = logging.LogRecord(
        "masterplan.server.runs", level, __file__, 1, message, None, None, func=None
    )
    record.created = CREATED
    record.__dict__.update(extra)
    return record


def _formatted(formatter: logging.Formatter, record: logging.LogRecord) -> str:
    ContextFilter().filter(record)
    return formatter.format(record)


# -- formats ---------------------------------------------------------------------
def test_text_format_is_time_level_logger_message_then_context_and_fields() -> None:
    with log_context(tenant="acme", plan="main", run="r1", version=3, request=""):
        record = _record(
            "run finished",
            **fields(rows={"planned_orders": 2, "pegging": 5}, seconds=1.25, note="two words"),
        )
        line = _formatted(TextFormatter(), record)
    assert line == (
        "2026-12-02T10:00:00.250Z INFO masterplan.server.runs run finished "
        "tenant=acme plan=main run=r1 version=3 "
        'rows=planned_orders:2,pegging:5 seconds=1.25 note="two words"'
    )


def test_text_format_appends_the_traceback_and_quotes_what_would_split() -> None:
    try:
        raise ValueError("bad = value")
    except ValueError as exc:
        record = _record("upload failed", logging.WARNING, **error_fields(exc))
        record.exc_info = sys.exc_info()
    first, *rest = _formatted(TextFormatter(), record).splitlines()
    assert first.endswith('upload failed error="bad = value" error_type=ValueError')
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-1] == "ValueError: bad = value"


def test_json_format_is_one_object_per_line_with_typed_values() -> None:
    with log_context(tenant="acme", plan="main"):
        bind(run="r1", version=3)
        record = _record("run finished", **fields(rows={"pegging": 5}, message="not mine"))
        line = _formatted(JsonFormatter(), record)
    assert "\n" not in line
    assert json.loads(line) == {
        "time": "2026-12-02T10:00:00.250Z",
        "level": "INFO",
        "logger": "masterplan.server.runs",
        "message": "run finished",  # a field never overwrites the line's own keys
        "tenant": "acme",
        "plan": "main",
        "run": "r1",
        "version": 3,
        "rows": {"pegging": 5},
    }
    assert current_context() == {}  # the block's exit undid the bind too


def test_scoped_calls_start_empty_and_keep_their_context_for_outer_handlers() -> None:
    seen: list[dict[str, object]] = []

    def funnel_like(method: Any) -> Any:
        """Logs after the method returned, as the error funnel does."""

        def call() -> None:
            try:
                method()
            except RuntimeError:
                seen.append(dict(current_context()))

        return call

    @scoped
    @funnel_like
    def failing() -> None:
        bind(tenant="acme", run="r1")
        raise RuntimeError

    @scoped
    def streaming() -> Iterator[dict[str, object]]:
        bind(plan="other")
        yield dict(current_context())

    with log_context(tenant="leaked"):
        failing()
        assert list(streaming()) == [{"plan": "other"}]
        assert current_context() == {"tenant": "leaked"}
    assert seen == [{"tenant": "acme", "run": "r1"}]


def test_configure_routes_every_logger_through_the_format() -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.getLogger("masterplan").level)
    out = io.StringIO()
    try:
        configure("json", "debug", out)
        with log_context(tenant="acme"):
            logging.getLogger("masterplan.server.x").debug("kept")
            logging.getLogger("some.library").info("dropped: below warning")
            logging.getLogger("some.library").warning("kept too")
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
        assert [(r["message"], r["tenant"]) for r in lines] == [
            ("kept", "acme"),
            ("kept too", "acme"),
        ]
        with pytest.raises(ValueError, match="log format"):
            configure("xml")  # type: ignore[arg-type]
    finally:
        logging.captureWarnings(False)
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        logging.getLogger("masterplan").setLevel(saved[2])


# -- a real server process -------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def json_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``masterplan serve --log-format json``; yields its address and its stderr file."""
    port = _free_port()
    stderr = tmp_path / "stderr.log"
    with stderr.open("w") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "masterplan.client.cli",
                "serve",
                "--port",
                str(port),
                "--registry",
                f"sqlite:///{tmp_path / 'reg.db'}",
                "--log-format",
                "json",
                "--drain",
                "0",
                "--grace",
                "5",
            ],
            cwd=ROOT,
            env={**os.environ, "MASTERPLAN_ADMIN_KEY": ADMIN},
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening" in line, stderr.read_text()
        yield f"127.0.0.1:{port}", stderr
    finally:
        proc.terminate()  # SIGTERM: a graceful stop flushes every line
        proc.wait(30)
        assert proc.stdout is not None
        proc.stdout.close()


def _lines(stderr: Path) -> list[dict[str, Any]]:
    lines = [line for line in stderr.read_text().splitlines() if line.startswith("{")]
    return [json.loads(line) for line in lines]


def test_server_logs_uploads_and_runs_as_json_lines_naming_the_call(
    json_server: tuple[str, Path],
) -> None:
    address, stderr = json_server
    with MasterplanClient(address, ADMIN) as admin:
        key = admin.install_tenant("acme").api_key
    with MasterplanClient(address, key) as client:
        uploaded = client.upload("tenants/acme/plans/main", big_tables(3))
        run = client.run_plan("tenants/acme/plans/main", run_id="r1").run
        broken = [
            (name, {c: v for c, v in table.items() if c != "priority"})
            for name, table in big_tables(3)
        ]
        with pytest.raises(errors.InvalidArgument):
            client.upload("tenants/acme/plans/main", broken)
    # The server writes a line before it answers; allow for a slow disk anyway.
    for _ in range(50):
        if any(r["message"] == "upload failed" for r in _lines(stderr)):
            break
        time.sleep(0.1)
    lines = _lines(stderr)
    by_message: dict[str, list[dict[str, Any]]] = {}
    for r in lines:
        assert {"time", "level", "logger", "message"} <= set(r), r
        by_message.setdefault(r["message"], []).append(r)

    finished = by_message["upload finished"]
    assert [(r["tenant"], r["plan"], r["version"]) for r in finished] == [
        ("acme", "main", uploaded.version)
    ]
    assert finished[0]["rows"] == uploaded.total_rows
    assert finished[0]["tables"] == {"warehouses": 1, "items": 3, "sales_lines": 6}
    assert finished[0]["request"]  # the header's request id

    for message in ("run started", "run finished"):
        (r,) = by_message[message]
        assert (r["tenant"], r["plan"], r["run"], r["version"]) == (
            "acme",
            "main",
            "r1",
            run.dataset_version,
        ), r
    assert by_message["run finished"][0]["rows"] == dict(run.row_counts)
    assert by_message["run finished"][0]["seconds"] >= 0

    (failed,) = by_message["upload failed"]
    assert failed["level"] == "WARNING"
    assert (failed["tenant"], failed["plan"], failed["version"]) == ("acme", "main", 1)
    assert "priority" in failed["error"] and "missing" in failed["error"]
    assert failed["error_type"] == "CodecError"

    text = stderr.read_text()
    assert key not in text and ADMIN not in text  # never a credential
    assert "I000001" not in text  # never a data row's content
