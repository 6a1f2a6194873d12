"""Connection strings as an operator expects them (SPEC §8): URLs from the
environment, the plan in a results database of its own, and no password in
anything a command prints, on success or failure."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from masterplan.connector.demo import build_demo_database
from tests.backends import database_url

T0 = dt.date(2026, 12, 7)
SECRET = "s3cret-Pa55word"


def masterplan(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "masterplan.client.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def test_source_and_results_urls_come_from_the_environment(tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'erp.db'}"
    results = f"sqlite:///{tmp_path / 'plan.db'}"
    build_demo_database(source, T0)
    done = masterplan(
        "run",
        "--plan-date",
        T0.isoformat(),
        "--json",
        env={"MASTERPLAN_DB_URL": source, "MASTERPLAN_RESULTS_DB_URL": results},
    )
    assert done.returncode == 0, done.stderr
    run_id = json.loads(done.stdout)["run_id"]
    # The plan is in the results database, and the source's plan untouched.
    with sa.create_engine(results).connect() as conn:
        assert conn.execute(sa.text("SELECT current_run_id FROM plans")).scalar() == run_id
        assert conn.execute(sa.text("SELECT COUNT(*) FROM planned_orders")).scalar() > 0
    with sa.create_engine(source).connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM plans")).scalar() == 0

    checked = masterplan(
        "scm", "check", "--plan-date", T0.isoformat(), "--json", env={"MASTERPLAN_DB_URL": source}
    )
    assert checked.returncode == 0, checked.stderr
    assert "messages" in json.loads(checked.stdout)


@pytest.mark.postgres
def test_no_command_prints_a_password(tmp_path: Path) -> None:
    gen = database_url("postgresql", tmp_path)
    url = next(gen)
    try:
        # The test server trusts local connections, so the password is
        # accepted and ignored: what matters is that no output repeats it.
        with_password = make_url(url).set(password=SECRET).render_as_string(hide_password=False)
        outputs = [
            masterplan("scm", "init", "--db", with_password, "--json"),
            masterplan("scm", "check", "--db", with_password, "--json"),
            masterplan("run", "--db", with_password, "--plan-date", T0.isoformat(), "--json"),
            masterplan(
                "run",
                "--plan-date",
                T0.isoformat(),
                env={"MASTERPLAN_DB_URL": with_password.replace("127.0.0.1:5432", "127.0.0.1:9")},
            ),
            masterplan("scm", "check", "--db", with_password, "--source", "odoo17"),
        ]
    finally:
        next(gen, None)
    assert [o.returncode for o in outputs] == [0, 0, 0, 1, 1]
    assert "***" in outputs[0].stdout  # the URL is shown, its password masked
    for done in outputs:
        assert SECRET not in done.stdout + done.stderr


def test_the_summary_line_says_a_delta_read_less() -> None:
    from masterplan.client.cli.main import _sync_line
    from masterplan.client.cli.syncing import SyncReport

    by_change = SyncReport(
        "delta", "", 3, 1, 0.01, 7, rows_read=5, keys_read=900, read_by_change=["items", "boms"]
    )
    assert _sync_line(by_change) == (
        "synced a delta: 3 rows added or changed, 1 removed (data set version 7); "
        "read 5 rows and the keys of 2 table(s) by change column"
    )
    whole = SyncReport("delta", "", 3, 1, 0.01, 7, rows_read=4000)
    assert _sync_line(whole).endswith("(data set version 7)")
