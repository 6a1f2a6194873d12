"""The generated API stubs are reproducible and current."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def test_generated_stubs_are_fresh() -> None:
    pytest.importorskip(
        "grpc_tools", reason="the generator (grpcio-tools) comes with the dev extra"
    )
    done = subprocess.run(
        [sys.executable, "protos/generate.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
