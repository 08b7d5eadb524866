"""Start and stop the five services as separate processes (``cfp run``, end-to-end tests).

Each service runs as ``python -m uvicorn --factory services.<name>.main:create_app`` on
127.0.0.1 with its own port; :class:`ServiceSupervisor` waits until every ``/readyz``
answers 200 and stops them all (SIGTERM, then SIGKILL after a grace period).

A port of 0 means "any free port": the supervisor binds and listens on the socket itself and
hands it to uvicorn (``--fd``), so no other process can take the port between choosing it and
the service starting (tests and benchmarks on a shared machine start many servers at once).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from shared.events.registry import SERVICE_PORTS, SERVICES

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that is free right now (for tests and benchmarks).

    Racy by nature: another process may bind the port before the caller does. For services
    started by :class:`ServiceSupervisor` give port 0 instead, which is race-free.
    """
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Return ``count`` distinct TCP ports on ``host`` that are free right now.

    All sockets stay bound until every port is chosen, so the ports differ from each other
    (two :func:`free_port` calls in a row may return the same port). Racy against other
    processes like :func:`free_port`; for servers that cannot take a bound socket (Kafka).
    """
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind((host, 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


@dataclass
class ServiceSupervisor:
    """The running service processes.

    Attributes:
        env: environment given to every service (DATABASE_URL, KAFKA_..., CFP_...).
        ports: port per service name; 0 picks a free port when the service starts (the
            chosen port replaces the 0, so :meth:`url` is right after :meth:`start`).
        log_dir: where each service's stdout/stderr goes (``<name>.log``); inherited
            streams when None.
    """

    env: dict[str, str]
    ports: dict[str, int] = field(default_factory=lambda: dict(SERVICE_PORTS))
    log_dir: Path | None = None
    host: str = "127.0.0.1"
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def url(self, service: str) -> str:
        """Return the base URL of ``service``."""
        return f"http://{self.host}:{self.ports[service]}"

    def start(self, services: tuple[str, ...] = SERVICES) -> None:
        """Start the given services (not waiting for readiness).

        Raises:
            RuntimeError: a port is already taken (by another copy of a service, say): the
                readiness check would otherwise be answered by that other process.
        """
        taken = [
            f"{name} ({self.ports[name]})"
            for name in services
            if self.ports[name] and _port_in_use(self.host, self.ports[name])
        ]
        if taken:
            raise RuntimeError(
                "port(s) already in use: "
                + ", ".join(taken)
                + "; stop what listens there or choose other ports (cfp run --base-port)"
            )
        for name in services:
            listener: socket.socket | None = None
            if self.ports[name] == 0:
                listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                listener.bind((self.host, 0))
                listener.listen(2048)
                self.ports[name] = int(listener.getsockname()[1])
                bind = ["--fd", str(listener.fileno())]
            else:
                bind = ["--host", self.host, "--port", str(self.ports[name])]
            cmd = [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                f"services.{name}.main:create_app",
                *bind,
                "--no-access-log",
                "--timeout-graceful-shutdown",
                "10",
            ]
            out: int | object = subprocess.DEVNULL
            if self.log_dir is not None:
                self.log_dir.mkdir(parents=True, exist_ok=True)
                out = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - child owns it
            try:
                self.procs[name] = subprocess.Popen(
                    cmd,
                    cwd=REPO_ROOT,
                    env={**os.environ, **self.env},
                    stdout=out if self.log_dir else None,  # type: ignore[arg-type]
                    stderr=subprocess.STDOUT if self.log_dir else None,
                    pass_fds=(listener.fileno(),) if listener is not None else (),
                )
            finally:
                if listener is not None:
                    listener.close()  # the child holds its own copy

    def wait_ready(self, timeout_seconds: float = 60.0) -> None:
        """Block until every started service answers ``/readyz`` with 200.

        The answer must name the expected service: a different process answering on the port
        is an error, not readiness.

        Raises:
            RuntimeError: a process exited, another service answers on the port, or the
                timeout passed.
        """
        deadline = time.monotonic() + timeout_seconds
        pending = set(self.procs)
        while pending:
            for name in list(pending):
                code = self.procs[name].poll()
                if code is not None:
                    raise RuntimeError(f"service {name} exited with code {code}")
                try:
                    r = httpx.get(self.url(name) + "/readyz", timeout=2.0)
                    body = r.json() if r.status_code in (200, 503) else {}
                    if body.get("service") not in (None, name):
                        raise RuntimeError(
                            f"port {self.ports[name]} of {name} is answered by "
                            f"{body.get('service')}"
                        )
                    if r.status_code == 200 and body.get("checks", {}).get("kafka") == "ok":
                        pending.discard(name)
                except (httpx.HTTPError, ValueError):
                    pass
            if pending and time.monotonic() > deadline:
                raise RuntimeError(
                    f"services not ready after {timeout_seconds}s: {sorted(pending)}"
                )
            if pending:
                time.sleep(0.3)

    def exited(self) -> dict[str, int]:
        """Return the services whose process has ended, with their exit codes."""
        return {n: code for n, p in self.procs.items() if (code := p.poll()) is not None}

    def stop(self, grace_seconds: float = 15.0) -> dict[str, int | None]:
        """SIGTERM every service, wait up to ``grace_seconds``, then SIGKILL.

        Returns:
            Exit code per service.
        """
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        codes: dict[str, int | None] = {}
        for name, proc in self.procs.items():
            try:
                codes[name] = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[name] = proc.wait()
        return codes
