"""``masterplan runs list|get|cancel``, ``plans list|get|delete`` and the
confirmation of ``tenant uninstall``, against a served tenant."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.cli.test_run_cli import ADMIN, make_db, masterplan, served  # noqa: F401  (a fixture)


def _tenant(address: str, env: dict[str, str], name: str = "acme") -> str:
    done = masterplan("tenant", "install", name, "--server", address, "--json", env=env)
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["api_key"])


def test_runs_and_plans(tmp_path: Path, served) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    address, admin = served
    env = {"MASTERPLAN_API_KEY": _tenant(address, admin), "MASTERPLAN_SERVER": address}
    url = make_db(tmp_path / "scm.db")
    for _ in range(2):
        done = masterplan("run", "--db", url, "--plan-date", "2026-01-05", "--json", env=env)
        assert done.returncode == 0, done.stderr
    newest = json.loads(done.stdout)["run_id"]

    runs = json.loads(masterplan("runs", "list", "--json", env=env).stdout)
    assert len(runs) == 2 and runs[0]["run_id"] == newest
    assert all(r["state"] == "SUCCEEDED" and r["plan_date"] == "2026-01-05" for r in runs)
    listed = masterplan("runs", "list", env=env).stdout.splitlines()
    assert listed[0].startswith(f"{newest}  SUCCEEDED")
    # Only the newest succeeded run's results can be read again.
    assert [r["results_kept"] for r in runs] == [True, False]
    assert listed[0].endswith("(results kept)") and "kept" not in listed[1]
    got = json.loads(masterplan("runs", "get", newest, "--json", env=env).stdout)
    assert got["name"] == f"tenants/acme/plans/main/runs/{newest}"
    assert got["rows"]["planned_orders"] == 4
    missing = masterplan("runs", "get", "nope", env=env)
    assert missing.returncode == 1 and "NOT_FOUND" in missing.stderr

    plans = json.loads(masterplan("plans", "list", "--json", env=env).stdout)
    assert [p["name"] for p in plans] == ["tenants/acme/plans/main"]
    (plan,) = plans
    assert plan["run_count"] == 2 and plan["last_run"]["run_id"] == newest
    assert plan["input_rows"] > 0 and plan["bytes_held"] > 0
    # Without a terminal and without --yes, nothing is deleted.
    refused = masterplan("plans", "delete", "main", env=env)
    assert refused.returncode == 1 and "--yes" in refused.stderr
    assert (
        json.loads(masterplan("plans", "get", "main", "--json", env=env).stdout)["run_count"] == 2
    )
    done = masterplan("plans", "delete", "main", "--yes", env=env)
    assert done.returncode == 0 and done.stdout.strip() == "plan main deleted"
    assert json.loads(masterplan("plans", "list", "--json", env=env).stdout) == []
    no_key = masterplan("plans", "list", "--server", address)
    assert no_key.returncode == 2 and "MASTERPLAN_API_KEY" in no_key.stderr


def test_tenant_uninstall_asks_first(tmp_path: Path, served) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    address, admin = served
    _tenant(address, admin, "acme")
    refused = masterplan("tenant", "uninstall", "acme", "--server", address, env=admin)
    assert refused.returncode == 1 and "--yes" in refused.stderr
    listed = masterplan("tenant", "list", "--server", address, "--json", env=admin)
    assert [t["tenant"] for t in json.loads(listed.stdout)] == ["acme"]
    # On a terminal the answer decides; "n" keeps the tenant.
    script = (
        "import sys, builtins; sys.stdin.isatty = lambda: True; "
        "builtins.input = lambda prompt='': (print(prompt, end=''), 'n')[1]; "
        "from masterplan.client.cli import main; "
        f"sys.exit(main(['tenant', 'uninstall', 'acme', '--server', '{address}']))"
    )
    kept = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**__import__("os").environ, "MASTERPLAN_ADMIN_KEY": ADMIN},
    )
    assert kept.returncode == 1 and "uninstall tenant acme" in kept.stdout
    done = masterplan("tenant", "uninstall", "acme", "--yes", "--server", address, env=admin)
    assert done.returncode == 0, done.stderr
    listed = masterplan("tenant", "list", "--server", address, "--json", env=admin)
    assert json.loads(listed.stdout) == []


def test_run_checks_the_key_before_it_reads_the_database(tmp_path: Path, served) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """A database missing an input table fails its read; with a wrong key the
    run is refused first, so the key is what the error names."""
    import sqlite3

    address, admin = served
    key = _tenant(address, admin)
    db = tmp_path / "scm.db"
    url = make_db(db)
    con = sqlite3.connect(db)
    con.execute("DROP TABLE forecasts")
    con.commit()
    con.close()
    wrong = masterplan("run", "--db", url, "--server", address, "--api-key", key + "x")
    assert wrong.returncode == 1 and "UNAUTHENTICATED" in wrong.stderr
    assert "forecasts" not in wrong.stderr
    right = masterplan("run", "--db", url, "--server", address, "--api-key", key)
    assert right.returncode == 1 and "forecasts" in right.stderr


def test_tenant_commands_find_the_server_in_the_environment(served) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """SPEC §8: the server can come from ``MASTERPLAN_SERVER``, for ``tenant``
    as for the tenant's own commands; it went to the default address."""
    address, admin = served
    env = {**admin, "MASTERPLAN_SERVER": address}
    done = masterplan("tenant", "install", "acme", "--json", env=env)
    assert done.returncode == 0, done.stderr
    listed = masterplan("tenant", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert [t["tenant"] for t in json.loads(listed.stdout)] == ["acme"]
    # --server still wins over the environment.
    elsewhere = masterplan("tenant", "list", "--server", "127.0.0.1:1", env=env)
    assert elsewhere.returncode == 1 and "UNAVAILABLE" in elsewhere.stderr
