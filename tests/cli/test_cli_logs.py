"""The command line and the server's log: a failure stays one line; formats are checked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.cli.test_run_cli import make_db

MASTERPLAN = [sys.executable, "-m", "masterplan.client.cli"]
ROOT = Path(__file__).parents[2]


def test_a_failed_run_with_the_embedded_server_prints_one_line(tmp_path: Path) -> None:
    url = make_db(tmp_path / "scm.db")
    done = subprocess.run(
        [*MASTERPLAN, "run", "--db", url, "--default-group", "no-such-group"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    # The embedded server logs the failed run too; that stays out of the CLI's stderr.
    assert done.stderr.splitlines() == [
        "masterplan: INVALID_ARGUMENT: default group 'no-such-group' is not in coverage_groups"
    ]


def test_serve_refuses_an_unknown_log_format() -> None:
    done = subprocess.run(
        [*MASTERPLAN, "serve", "--log-format", "xml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--log-format" in done.stderr and "'xml'" in done.stderr
