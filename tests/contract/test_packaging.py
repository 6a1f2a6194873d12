"""What a built wheel installs: the one namespace ``masterplan`` and its metadata.

A user's own ``server.py`` or ``client`` package must never shadow ours, so
the wheel may install no other top-level name (SPEC §2).
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_installs_the_single_top_level_package_masterplan(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("masterplan-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"masterplan"}
    # The design card's folders are there, under the namespace, with their typing marker.
    for module in (
        "masterplan/__init__.py",
        "masterplan/contract/tables.py",
        "masterplan/codec.py",
        "masterplan/v1/planning_pb2.pyi",
        "masterplan/server/engine/plan.py",
        "masterplan/tenancy/registry.py",
        "masterplan/connector/reader.py",
        "masterplan/client/client.py",
        "masterplan/client/cli/main.py",
        "masterplan/py.typed",
    ):
        assert module in names, module
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "License-Expression: Apache-2.0" in text
    # Generators and drivers are extras, not runtime requirements.
    requires = [line for line in text.splitlines() if line.startswith("Requires-Dist:")]
    runtime = [r for r in requires if "extra ==" not in r]
    for tool in ("grpcio-tools", "mypy-protobuf", "psycopg", "pymysql"):
        assert not any(tool in r.lower() for r in runtime), (tool, runtime)


def test_version_is_reported() -> None:
    import masterplan

    out = subprocess.run(
        [sys.executable, "-m", "masterplan.client.cli", "--version"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert out.stdout.strip() == f"masterplan {masterplan.__version__}"
    assert masterplan.__version__[0].isdigit()
