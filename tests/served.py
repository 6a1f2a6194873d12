"""``masterplan serve`` as a child process on loopback, for tests that need a real one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from masterplan.client.client import MasterplanClient

ROOT = Path(__file__).parents[1]
CLI = [sys.executable, "-m", "masterplan.client.cli"]
ADMIN = "an-admin-key-of-enough-length-123"


def wait_serving(address: str, timeout: float = 60.0) -> None:
    """Wait until the server's health says SERVING: its kernels are loaded."""
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            status = stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status
            if status == health_pb2.HealthCheckResponse.SERVING:
                return
            assert time.monotonic() < deadline, f"{address} still {status} after {timeout} s"
            time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    """One server process; ``registry`` may be shared with another one.

    Its log goes to ``<tmp>/serve-<port>.log``: a pipe nobody reads would
    fill up and block the server in the middle of a write.
    """

    def __init__(
        self, tmp: Path, *extra: str, registry: Path | None = None, port: int | None = None
    ) -> None:
        # A fixed port lets a test restart a server where its clients expect it.
        port = port or free_port()
        self.address = f"127.0.0.1:{port}"
        self.log = tmp / f"serve-{port}.log"
        self.registry = registry or tmp / "reg.db"
        self.proc = subprocess.Popen(
            [
                *CLI,
                "serve",
                "--port",
                str(port),
                "--registry",
                f"sqlite:///{self.registry}",
                *extra,
            ],
            cwd=ROOT,
            env={**os.environ, "MASTERPLAN_ADMIN_KEY": ADMIN},
            stdout=subprocess.PIPE,
            stderr=self.log.open("w"),
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert "listening" in line, self.log.read_text()
        wait_serving(self.address)

    def admin(self) -> MasterplanClient:
        return MasterplanClient(self.address, ADMIN)

    def install(self, name: str) -> str:
        with self.admin() as admin:
            return admin.install_tenant(name).api_key

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)
