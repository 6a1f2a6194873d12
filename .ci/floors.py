"""Print pip constraints that pin every declared lower bound to itself.

A floor such as ``numpy>=2.0`` is a promise that the project works on numpy
2.0, yet the main job tests the lock's versions (constraints.txt, usually
the newest releases), so a floor can go stale without anyone noticing. CI therefore installs the project a
second time with each floor pinned exactly and runs the tests on that:

    python .ci/floors.py > /tmp/floors.txt
    pip install -c /tmp/floors.txt -e '.[test,postgres,mariadb]'

It reads ``[project] dependencies`` and the extras named in ``EXTRAS`` from
pyproject.toml. A requirement with a ``>=`` bound is pinned to that bound
(``numpy>=2.0`` becomes ``numpy==2.0``), an exact pin (``==``) is kept as it
is, and a requirement without a lower bound is left free. Extras are dropped,
since constraints cannot carry them (``psycopg[binary]>=3.1`` becomes
``psycopg==3.1``); what an extra pulls in follows from the pinned package's
own metadata (psycopg's ``binary`` extra pins psycopg-binary to its own
version). Environment markers are kept.

A floor must name a version that is actually released, with wheels for the
supported Pythons, or the pinned install fails; that failure is the point.

The script needs only the standard library, so it runs before anything is
installed.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

EXTRAS = ("test", "postgres", "mariadb")

ROOT = Path(__file__).resolve().parent.parent

# name [extras] specifiers ; marker   (PEP 508, without URL requirements)
_REQUIREMENT = re.compile(
    r"""
    ^\s*(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)
    \s*(?:\[(?P<extras>[^\]]*)\])?
    \s*\(?(?P<specs>[^;()]*)\)?
    \s*(?:;\s*(?P<marker>.*?))?\s*$
    """,
    re.VERBOSE,
)
_SPEC = re.compile(r"^\s*(?P<op>~=|===|==|!=|<=|>=|<|>)\s*(?P<version>\S+)\s*$")


def constraint(requirement: str) -> str | None:
    """The constraints line for one requirement, or None to leave it free."""
    match = _REQUIREMENT.match(requirement)
    if match is None:
        raise SystemExit(f"floors.py: cannot parse requirement {requirement!r}")
    name = match["name"]
    specs = [s for s in match["specs"].split(",") if s.strip()]
    pin = None
    for spec in specs:
        parsed = _SPEC.match(spec)
        if parsed is None:
            raise SystemExit(f"floors.py: cannot parse {spec!r} in {requirement!r}")
        op, version = parsed["op"], parsed["version"]
        if op in ("==", "==="):
            pin = f"{op}{version}"
            break
        if op in (">=", "~="):
            pin = f"=={version}"
    if pin is None:
        return None
    marker = match["marker"]
    return f"{name}{pin}" + (f"; {marker}" if marker else "")


def main() -> int:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project.get("optional-dependencies", {})
    requirements = list(project.get("dependencies", []))
    for extra in EXTRAS:
        if extra not in extras:
            raise SystemExit(f"floors.py: pyproject.toml has no extra {extra!r}")
        requirements += extras[extra]
    seen: set[str] = set()
    for requirement in requirements:
        line = constraint(requirement)
        if line is not None and line not in seen:
            seen.add(line)
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
