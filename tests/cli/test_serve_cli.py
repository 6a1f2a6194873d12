"""``masterplan serve``: plaintext only on loopback unless ``--insecure``; host,
port, registry and TLS from flags or the environment, which ``masterplan
health`` reads too."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.served import ADMIN, CLI, ROOT, free_port


def clean_env(**values: str) -> dict[str, str]:
    """This process's environment without MASTERPLAN_* settings, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MASTERPLAN_")}
    return {**env, "MASTERPLAN_ADMIN_KEY": ADMIN, **values}


def refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@contextmanager
def serving(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [*CLI, "serve", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening" in line, log.read_text()
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)


def refused_start(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``masterplan serve ARGS`` with ``env``, expected to refuse to start."""
    done = subprocess.run(
        [*CLI, "serve", *args],
        cwd=ROOT,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "listening" not in done.stdout
    return done


def health_until_serving(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``masterplan health`` until it exits 0 (the kernels load first), or its last answer."""
    deadline = time.monotonic() + 60
    while True:
        done = subprocess.run(
            [*CLI, "health", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        if done.returncode == 0 or time.monotonic() > deadline:
            return done
        time.sleep(0.2)


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--host", "0.0.0.0"], {}),
        ([], {"MASTERPLAN_HOST": "0.0.0.0"}),
        (["--host", "::"], {}),
    ],
    ids=["flag", "environment", "ipv6"],
)
def test_serve_refuses_plaintext_on_a_host_that_is_not_loopback(
    tmp_path: Path, args: list[str], env: dict[str, str]
) -> None:
    port = free_port()
    registry = tmp_path / "reg.db"
    done = refused_start(["--port", str(port), "--registry", f"sqlite:///{registry}", *args], env)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    host = "[::]" if "::" in args else "0.0.0.0"
    assert lines[0].startswith(f"masterplan: refusing plaintext on {host}:{port}"), lines
    assert "--insecure" in lines[0] and "--tls-cert" in lines[0] and "--tls-key" in lines[0]
    assert refused(port)
    assert not registry.exists()  # refused before anything was opened


@pytest.mark.parametrize(
    ("args", "env"),
    [(["--insecure"], {}), ([], {"MASTERPLAN_INSECURE": "1"})],
    ids=["flag", "environment"],
)
def test_insecure_serves_plaintext_on_every_interface(
    tmp_path: Path, args: list[str], env: dict[str, str]
) -> None:
    port = free_port()
    command = ["--host", "0.0.0.0", "--port", str(port), "--registry", "sqlite://", *args]
    with serving(command, clean_env(**env), tmp_path / "serve.log"):
        done = health_until_serving(clean_env(), "--server", f"127.0.0.1:{port}")
        assert done.returncode == 0, done.stderr


def test_serve_and_health_read_port_and_registry_from_the_environment(tmp_path: Path) -> None:
    port = free_port()
    registry = tmp_path / "env-reg.db"
    env = clean_env(MASTERPLAN_PORT=str(port), MASTERPLAN_REGISTRY=f"sqlite:///{registry}")
    with serving([], env, tmp_path / "serve.log") as proc:
        done = health_until_serving(env)  # no --server: 127.0.0.1 at MASTERPLAN_PORT
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"127.0.0.1:{port}: SERVING"
        assert registry.exists()
        assert proc.poll() is None
    # A flag wins over the variable.
    other = free_port()
    with serving(["--port", str(other)], env, tmp_path / "serve2.log"):
        done = health_until_serving(env, "--server", f"127.0.0.1:{other}")
        assert done.returncode == 0, done.stderr


def test_a_bad_port_in_the_environment_is_one_line(tmp_path: Path) -> None:
    done = refused_start([], {"MASTERPLAN_PORT": "http"})
    assert done.stderr.strip() == "masterplan: MASTERPLAN_PORT must be a port number, got 'http'"


@pytest.mark.parametrize(
    ("args", "env", "said"),
    [
        ([], {"MASTERPLAN_WORKERS": "two"}, "MASTERPLAN_WORKERS must be a whole number"),
        (["--workers", "0"], {}, "plan_workers must be at least 1"),
        ([], {"MASTERPLAN_EXECUTOR": "fibers"}, "MASTERPLAN_EXECUTOR must be threads or processes"),
    ],
    ids=["workers-environment", "workers-flag", "executor-environment"],
)
def test_bad_partition_settings_are_one_line(
    tmp_path: Path, args: list[str], env: dict[str, str], said: str
) -> None:
    done = refused_start(
        ["--port", "0", "--registry", f"sqlite:///{tmp_path / 'r.db'}", *args], env
    )
    assert said in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_serve_plans_over_workers_from_the_environment(tmp_path: Path) -> None:
    """``MASTERPLAN_WORKERS`` reaches the server: its log says it plans over partitions."""
    env = clean_env(MASTERPLAN_PORT=str(free_port()), MASTERPLAN_WORKERS="2")
    log = tmp_path / "serve.log"
    with serving(["--registry", f"sqlite:///{tmp_path / 'r.db'}"], env, log):
        done = health_until_serving(env)
        assert done.returncode == 0, done.stderr
    text = log.read_text()
    assert "planning over partitions" in text and "workers=2" in text and "threads" in text
