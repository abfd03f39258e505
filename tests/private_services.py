"""A PostgreSQL server and a Redis server of our own, on free loopback ports, to stop and start at will.

Outage tests and the crash-matrix benchmark stop these, never the machine's own servers (other
processes, this test run included, depend on those). PostgreSQL refuses to run as root, so as root
its commands run as the `postgres` user.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on just now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_bin_dir() -> Path | None:
    """Return the folder holding pg_ctl and initdb, if PostgreSQL's server programs are installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


class PrivatePostgres:
    """A throw-away PostgreSQL cluster (trust auth, fsync off) listening on 127.0.0.1:port."""

    def __init__(self, bin_dir: Path, port: int | None = None) -> None:
        self.bin_dir = bin_dir
        self.port = port or free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="ecc-private-pg-"))
        self.data = self.folder / "data"
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        subprocess.run(_as_server_user([str(bin_dir / "initdb"), "-D", str(self.data), "-A", "trust", "-U",
                                        "postgres", "--no-sync"]), check=True, capture_output=True)

    def url(self, database: str = "postgres") -> str:
        """Return the SQLAlchemy URL of database on this server."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c fsync=off"
        subprocess.run(_as_server_user([str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-o", options, "-w",
                                        "-l", str(self.folder / "server.log"), "start"]),
                       check=True, capture_output=True)

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server (`immediate`: as a crash would, every connection cut at once)."""
        subprocess.run(_as_server_user([str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w",
                                        "stop"]), check=False, capture_output=True)

    def create_database(self, name: str) -> str:
        """Create database name and return its URL."""
        subprocess.run(_as_server_user([str(self.bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                                        "-U", "postgres", name]), check=True, capture_output=True)
        return self.url(name)

    def close(self) -> None:
        """Stop the server and remove its files."""
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


class PrivateRedis:
    """A Redis server that keeps nothing on disk, listening on 127.0.0.1:port."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        """Return the redis:// URL of database db."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        """Start the server and wait until it answers."""
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"the private Redis on port {self.port} did not start")

    def stop(self) -> None:
        """Kill the server at once (SIGKILL), as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def close(self) -> None:
        """Stop the server."""
        self.stop()


@contextmanager
def running_postgres() -> Iterator[PrivatePostgres]:
    """Start a private PostgreSQL (failing the test in CI when its server programs are missing); remove it after."""
    from tests.plugins.strict import require

    bin_dir = postgres_bin_dir()
    require(bin_dir is not None, "PostgreSQL's server programs (initdb, pg_ctl) are needed for outage tests")
    server = PrivatePostgres(bin_dir)
    try:
        server.start()
        yield server
    finally:
        server.close()


@contextmanager
def running_redis() -> Iterator[PrivateRedis]:
    """Start a private Redis (failing the test in CI when redis-server is missing); stop it after."""
    from tests.plugins.strict import require

    require(shutil.which("redis-server") is not None, "redis-server is needed for Redis outage tests")
    server = PrivateRedis()
    try:
        server.start()
        yield server
    finally:
        server.close()
