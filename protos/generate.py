"""Generate the Python stubs of the masterplan API from ``protos/``.

One command, run from anywhere::

    python protos/generate.py          # rewrite the generated files
    python protos/generate.py --check  # exit 1 if they are stale

The generated modules (``*_pb2.py``, ``*_pb2.pyi``, ``*_pb2_grpc.py``,
``*_pb2_grpc.pyi``) live beside their ``.proto`` files in
``protos/masterplan/v1`` and are installed as the package ``masterplan.v1``.
Nobody edits them by hand; a test runs ``--check``.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import sys
import sysconfig
import tempfile
from importlib import resources
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent
PROTO_DIR = PROTO_ROOT / "masterplan" / "v1"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def _generated(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.name.endswith(GENERATED_SUFFIXES))


def generate(out_root: Path) -> None:
    """Run protoc (from grpcio-tools) with the mypy-protobuf plugins into ``out_root``."""
    from grpc_tools import protoc

    include = str(resources.files("grpc_tools") / "_proto")
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_DIR.glob("*.proto"))
    # The mypy-protobuf plugins are console scripts installed beside this
    # interpreter; protoc finds plugins on PATH.
    env_path = os.pathsep.join([sysconfig.get_path("scripts"), os.environ.get("PATH", "")])
    os.environ["PATH"] = env_path
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out_root}",
        f"--grpc_python_out={out_root}",
        f"--mypy_out={out_root}",
        f"--mypy_grpc_out={out_root}",
        *protos,
    ]
    cwd = os.getcwd()
    os.chdir(PROTO_ROOT)
    try:
        code = protoc.main(args)
    finally:
        os.chdir(cwd)
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")


def stale_files() -> list[str]:
    """Names of generated files that differ from a fresh generation."""
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        fresh_dir = Path(tmp) / "masterplan" / "v1"
        fresh = {p.name: p for p in _generated(fresh_dir)}
        current = {p.name: p for p in _generated(PROTO_DIR)}
        names = sorted(set(fresh) | set(current))
        return [
            n
            for n in names
            if n not in fresh
            or n not in current
            or not filecmp.cmp(fresh[n], current[n], shallow=False)
        ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the stubs are stale")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        if stale:
            print("stale generated files: " + ", ".join(stale), file=sys.stderr)
            print("run: python protos/generate.py", file=sys.stderr)
            return 1
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        for old in _generated(PROTO_DIR):
            old.unlink()
        for new in _generated(Path(tmp) / "masterplan" / "v1"):
            shutil.copy2(new, PROTO_DIR / new.name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
