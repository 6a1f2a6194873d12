"""Write, or check, the lock file ``constraints.txt``: the exact versions of the
runtime dependencies that the image installs and that CI tests on.

    python .ci/lock.py            # a fresh resolve: rewrite constraints.txt
    python .ci/lock.py --check    # the committed lock installs exactly as written

Both make a throw-away virtual environment with the running Python and
install the project (``pip install .``, no extras: what the README's install
and the Dockerfile install) with pip's ordinary configuration. Without
``--check`` nothing constrains that install, so pip resolves the newest
versions that pyproject.toml allows, and the lock is what ``pip freeze``
then lists, less the project itself: the versions actually installed,
transitive dependencies included.

``--check`` installs with ``-c constraints.txt`` instead and fails, saying
what differs, when the result is not exactly the lock: a dependency added to
pyproject.toml but not locked, a pin pyproject.toml no longer allows, or a
pinned version the index no longer has. With every package pinned there is
only one answer, so the check gives the same result on every run until
pyproject.toml changes; it never fails because something new was released.

Regenerate after changing a dependency in pyproject.toml, or to take newer
releases, and commit the result. Run it with the Python the image uses (the
header names it): pins can differ between Python versions.

The script needs only the standard library, so it runs before anything is
installed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "constraints.txt"
PROJECT = "masterplan"

HEADER = """\
# The lock: exact versions of masterplan's runtime dependencies, transitive ones
# included, as `pip freeze` lists them after a fresh `pip install .` on
# Python {python}. The image installs with it (Dockerfile:
# `pip install -c constraints.txt .`) and CI tests on it (.ci/run).
# Written by `python .ci/lock.py`; do not edit by hand.
"""


def installed(constraints: Path | None) -> list[str]:
    """``name==version`` of each package a fresh install of the project brings, sorted."""
    with tempfile.TemporaryDirectory(prefix="masterplan-lock-") as tmp:
        env = Path(tmp) / "venv"
        venv.EnvBuilder(with_pip=True).create(env)
        python = env / "bin" / "python"
        command = [str(python), "-m", "pip", "install", "--quiet", "--no-cache-dir"]
        if constraints is not None:
            command += ["-c", str(constraints)]
        if subprocess.run([*command, str(ROOT)], stdout=subprocess.DEVNULL).returncode:
            what = "with constraints.txt" if constraints else "afresh"
            raise SystemExit(f"lock.py: the project does not install {what} (pip's reason above)")
        frozen = subprocess.run(
            [str(python), "-m", "pip", "freeze", "--exclude", PROJECT],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    return sorted(pins(frozen), key=_name)


def _name(pin: str) -> str:
    """The package name of a ``name==version`` line, for sorting."""
    return pin.split("==", 1)[0].strip().lower().replace("_", "-")


def pins(text: str) -> list[str]:
    """The requirement lines of a lock or of ``pip freeze`` output, without comments."""
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="install with the lock and compare, write nothing"
    )
    args = parser.parse_args(argv)
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    if not args.check:
        lines = installed(None)
        LOCK.write_text(HEADER.format(python=python) + "".join(f"{p}\n" for p in lines))
        print(f"wrote {LOCK.relative_to(ROOT)}: {len(lines)} pins")
        return 0
    if not LOCK.exists():
        print("lock.py: no constraints.txt: run python .ci/lock.py", file=sys.stderr)
        return 1
    locked = sorted(pins(LOCK.read_text()), key=_name)
    got = installed(LOCK)
    if got == locked:
        print(f"constraints.txt: the {len(locked)} pins install exactly")
        return 0
    for line in sorted(set(got) - set(locked), key=_name):
        print(f"lock.py: installed but not locked: {line}", file=sys.stderr)
    for line in sorted(set(locked) - set(got), key=_name):
        print(f"lock.py: locked but not installed: {line}", file=sys.stderr)
    print("lock.py: constraints.txt is stale: run python .ci/lock.py", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
