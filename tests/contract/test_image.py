"""The Dockerfile is a plain mirror of the README's install, with the lock.

No image is built here: the test reads the Dockerfile, README.md,
pyproject.toml and constraints.txt and checks that they agree. The image
installs what the README installs (same package source, same extras) with
the lock's versions, copies every folder the package list installs from,
keeps the registry on a volume, and checks its health with ``masterplan
health`` on the port and TLS the server reads; and the lock pins every
runtime dependency at a version pyproject.toml allows.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
LOCK = "constraints.txt"


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (INSTRUCTION, arguments), lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        op, _, rest = (pending + line).partition(" ")
        out.append((op.upper(), rest.strip()))
        pending = ""
    assert not pending, "a continued line at the end of the Dockerfile"
    return out


def arguments(rest: str) -> list[str]:
    """An instruction's arguments, in exec form (JSON) or shell form."""
    return list(json.loads(rest)) if rest.startswith("[") else shlex.split(rest)


def only(op: str) -> str:
    found = [rest for name, rest in dockerfile() if name == op]
    assert len(found) == 1, f"the Dockerfile has {len(found)} {op} instructions"
    return found[0]


def shell_commands(text: str) -> list[list[str]]:
    """The tokens of each line of a shell script, continued lines joined."""
    joined = text.replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in joined.splitlines()]


def pip_installs(tokens: list[str]) -> list[list[str]]:
    """The arguments of each ``pip install`` in a shell command's tokens."""
    commands: list[list[str]] = [[]]
    for token in tokens:
        if token in ("&&", "||", ";"):
            commands.append([])
        else:
            commands[-1].append(token)
    return [
        c[i + 2 :]
        for c in commands
        for i in range(len(c) - 1)
        if PurePosixPath(c[i]).name in ("pip", "pip3") and c[i + 1] == "install"
    ]


def pip_parts(args: list[str]) -> tuple[list[str], list[str]]:
    """(what is installed, constraint files) of ``pip install`` arguments."""
    targets: list[str] = []
    constraints: list[str] = []
    tokens = iter(args)
    for token in tokens:
        if token in ("-e", "--editable"):
            targets.append(next(tokens))
        elif token in ("-c", "--constraint"):
            constraints.append(next(tokens))
        elif token in ("-r", "--requirement", "-i", "--index-url", "--extra-index-url"):
            raise AssertionError(f"pip install {token} is not what the README installs")
        elif not token.startswith("-"):
            targets.append(token)
    return targets, constraints


def readme_install() -> list[str]:
    """The arguments of the README's install: the first ``pip install`` of its quick start."""
    text = (ROOT / "README.md").read_text()
    start = text.index("## Quick start")
    section = text[start : text.index("\n## ", start + 1)]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    installs = [i for block in blocks for line in shell_commands(block) for i in pip_installs(line)]
    assert installs, "the README's quick start installs nothing"
    return installs[0]


def test_the_image_installs_what_the_readme_installs_with_the_lock() -> None:
    runs = [pip_installs(shlex.split(rest)) for op, rest in dockerfile() if op == "RUN"]
    installs = [i for run in runs for i in run]
    assert len(installs) == 1, f"the Dockerfile should install once, not {installs}"
    targets, constraints = pip_parts(installs[0])
    readme_targets, readme_constraints = pip_parts(readme_install())
    # The same package source with the same extras (none); the image adds the lock.
    assert targets == readme_targets == ["."]
    assert readme_constraints == []
    assert constraints == [LOCK]


def package_folder(package: str, project: dict[str, Any]) -> PurePosixPath:
    """The folder a package installs from, by setuptools' ``package-dir`` mapping."""
    mapping: dict[str, str] = project["tool"]["setuptools"].get("package-dir", {})
    parts = package.split(".")
    for n in range(len(parts), -1, -1):
        prefix = ".".join(parts[:n])
        if prefix in mapping:
            return PurePosixPath(mapping[prefix], *parts[n:])
    return PurePosixPath(*parts)


def test_package_folders_follow_package_dir() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert package_folder("masterplan.v1", project) == PurePosixPath("protos/masterplan/v1")
    assert package_folder("masterplan.server.engine", project) == PurePosixPath("server/engine")


def test_the_image_copies_what_the_install_reads() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    copied = {
        PurePosixPath(src).parts[0]
        for op, rest in dockerfile()
        if op == "COPY"
        for src in [a for a in arguments(rest) if not a.startswith("--")][:-1]
    }
    folders = {
        package_folder(p, project).parts[0] for p in project["tool"]["setuptools"]["packages"]
    }
    assert folders <= copied, f"not copied: {sorted(folders - copied)}"
    files = {"pyproject.toml", project["project"]["readme"], *project["project"]["license-files"]}
    assert files | {LOCK} <= copied, f"not copied: {sorted(files | {LOCK} - copied)}"


def test_the_registry_lives_on_the_volume() -> None:
    volumes = [PurePosixPath(v) for v in arguments(only("VOLUME"))]
    command = arguments(only("CMD"))
    assert command[:2] == ["masterplan", "serve"]
    registry = command[command.index("--registry") + 1]
    url = make_url(registry)
    assert url.get_backend_name() == "sqlite" and url.database
    database = PurePosixPath(url.database)
    assert database.is_absolute()
    assert any(database.is_relative_to(v) for v in volumes), (database, volumes)


def test_the_server_and_its_health_check_read_one_port_and_one_tls() -> None:
    env = dict(
        token.split("=", 1) for op, rest in dockerfile() if op == "ENV" for token in arguments(rest)
    )
    port = env["MASTERPLAN_PORT"]
    assert arguments(only("EXPOSE")) == [port]
    command = arguments(only("CMD"))
    # Port and TLS come from the environment only, where the health check reads them too.
    for flag in ("--port", "--tls-cert", "--tls-key", "--client-ca"):
        assert flag not in command, f"CMD sets {flag}: the health check would not follow it"
    # Every interface, so plaintext must be asked for at run time (docs/operations.md).
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert "--insecure" not in command


def test_the_health_check_is_the_health_command() -> None:
    _options, cmd, check = only("HEALTHCHECK").partition("CMD ")
    assert cmd, "HEALTHCHECK without CMD"
    assert arguments(check.strip()) == ["masterplan", "health"], check


def lock_pins() -> dict[str, str]:
    pins = {}
    for raw in (ROOT / LOCK).read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep and version and not re.search(r"[;<>!~=\s@]", version), line
        pins[canonicalize_name(name)] = version
    return pins


def test_the_lock_holds_exact_pins_made_on_the_images_python() -> None:
    pins = lock_pins()
    assert "masterplan" not in pins
    image_python = re.fullmatch(r"python:(\d+\.\d+)[-.\w]*", only("FROM")).group(1)  # type: ignore[union-attr]
    assert f"Python {image_python}." in (ROOT / LOCK).read_text()
    assert "python .ci/lock.py" in (ROOT / LOCK).read_text()


@pytest.mark.parametrize(
    "requirement",
    tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"],
)
def test_the_lock_pins_every_runtime_dependency_within_its_bounds(requirement: str) -> None:
    req = Requirement(requirement)
    if req.marker is not None and not req.marker.evaluate(default_environment()):
        pytest.skip(f"{requirement}: not for this platform")
    pins = lock_pins()
    name = canonicalize_name(req.name)
    assert name in pins, f"{req.name} is not in {LOCK}: run python .ci/lock.py"
    assert req.specifier.contains(pins[name], prereleases=True), (
        f"{LOCK} pins {req.name}=={pins[name]}, outside {req.specifier}: run python .ci/lock.py"
    )


def test_ci_tests_on_the_lock_and_checks_it() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    installs = [i for line in shell_commands(script) for i in pip_installs(line)]
    main_install = next(i for i in installs if "-e" in i)  # the first: the main job's
    assert pip_parts(main_install)[1] == [LOCK]
    assert "python .ci/lock.py --check" in script
