"""Run `python -m service.cli serve` (this checkout's code) as a real process for end-to-end tests."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args: list[str], env: dict[str, str], log_path: Path, *, cwd: Path = ROOT,
                 ready: str = "/readyz", timeout: float = 60.0, program: list[str] | None = None) -> subprocess.Popen:
    """Start `service.cli <args>` (it must listen on LATENTCAST_PORT or --port) and wait until `ready` answers 200.

    The port is read from `--port` in args, else from env["LATENTCAST_PORT"]. stdout and stderr go to log_path.
    The process inherits this environment less any LATENTCAST_* variable: only `env` configures it. `program`
    replaces `python -m service.cli` (the `latentcast` console script, say); this checkout's code runs either way.
    """
    port = args[args.index("--port") + 1] if "--port" in args else env["LATENTCAST_PORT"]
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("LATENTCAST_")}
    env = {**inherited, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **env}
    with open(log_path, "w") as out:
        server = subprocess.Popen([*(program or [sys.executable, "-m", "service.cli"]), *args], cwd=cwd, env=env,
                                  stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{ready}", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            stop_server(server)
            raise AssertionError(f"server did not come up within {timeout} s:\n{log_path.read_text()}")
        time.sleep(0.1)


def stop_server(server: subprocess.Popen, timeout: float = 30.0) -> int:
    """SIGTERM, wait for the exit code; kill (and raise) if it does not stop in time."""
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
    try:
        return server.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
        raise


@contextmanager
def uvicorn_thread(app: object, **options: object) -> Iterator[int]:
    """`app` behind a real uvicorn in a thread of this process (so a test can make a route fail); yields the port."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **options))
    thread = threading.Thread(target=server.run, name="uvicorn-test")
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(30)
        assert not thread.is_alive()
