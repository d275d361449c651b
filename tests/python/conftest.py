"""Fixtures: strongroom server processes for the hvac suite.

The binary comes from $STRONGROOM_BIN (default target/debug/strongroom).
"""

import os
import pathlib
import queue
import socket
import subprocess
import tempfile
import threading

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
START_TIMEOUT = 30


def _binary():
    path = os.environ.get("STRONGROOM_BIN", str(ROOT / "target" / "debug" / "strongroom"))
    if not os.path.isfile(path):
        pytest.fail(f"strongroom binary not found at {path}: run `cargo build -p strongroom`")
    return path


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A running server process; `addr` is its base URL."""

    def __init__(self, args):
        self.lines = []
        self.proc = subprocess.Popen(
            [_binary(), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        q = queue.Queue()

        def pump():
            for line in self.proc.stdout:
                self.lines.append(line.rstrip("\n"))
                q.put(line)
            q.put(None)

        threading.Thread(target=pump, daemon=True).start()
        while True:
            try:
                line = q.get(timeout=START_TIMEOUT)
            except queue.Empty:
                self.stop()
                pytest.fail("server did not start in time:\n" + "\n".join(self.lines))
            if line is None:
                self.stop()
                pytest.fail("server exited before starting:\n" + "\n".join(self.lines))
            if "server started!" in line:
                break

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def config_server():
    """An uninitialised, sealed server from an inmem config file."""
    port = _free_port()
    with tempfile.TemporaryDirectory() as d:
        cfg = pathlib.Path(d) / "config.hcl"
        cfg.write_text(
            'storage "inmem" {}\n'
            f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n}}\n'
            "disable_mlock = true\n"
        )
        server = Server(["server", f"-config={cfg}"])
        server.addr = f"http://127.0.0.1:{port}"
        yield server
        server.stop()


@pytest.fixture
def operator_server():
    """An uninitialised, sealed server from an inmem config file whose
    listener serves the unauthenticated sys/generate-root/* and sys/rekey/*
    (OpenBao's listener flags, off by default)."""
    port = _free_port()
    with tempfile.TemporaryDirectory() as d:
        cfg = pathlib.Path(d) / "config.hcl"
        cfg.write_text(
            'storage "inmem" {}\n'
            f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n'
            "  disable_unauthed_generate_root_endpoints = false\n"
            "  disable_unauthed_rekey_endpoints = false\n}\n"
            "disable_mlock = true\n"
        )
        server = Server(["server", f"-config={cfg}"])
        server.addr = f"http://127.0.0.1:{port}"
        yield server
        server.stop()


@pytest.fixture
def dev_server():
    """A dev-mode server with root token `root`."""
    port = _free_port()
    server = Server(
        [
            "server",
            "-dev",
            "-dev-listen-address",
            f"127.0.0.1:{port}",
            "-dev-root-token-id",
            "root",
        ]
    )
    server.addr = f"http://127.0.0.1:{port}"
    server.token = "root"
    yield server
    server.stop()


@pytest.fixture
def dev_server_with_env():
    """A factory: `start(env)` starts a dev-mode server (root token `root`)
    whose process also gets the variables in `env` (e.g. SSL_CERT_FILE).

    The variables are set in this process only while the server is spawned
    (the child copies the environment), then restored.
    """
    servers = []

    def start(env):
        port = _free_port()
        with pytest.MonkeyPatch.context() as mp:
            for name, value in env.items():
                mp.setenv(name, value)
            server = Server(
                [
                    "server",
                    "-dev",
                    "-dev-listen-address",
                    f"127.0.0.1:{port}",
                    "-dev-root-token-id",
                    "root",
                ]
            )
        server.addr = f"http://127.0.0.1:{port}"
        server.token = "root"
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
