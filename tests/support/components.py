"""Runs a component in-process, on its own event loop thread, with real gRPC, NATS and database."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from consultflow.cli.system import free_port, health_status
from consultflow.platform.bootstrap import Context, Parts, serve
from consultflow.platform.settings import Settings
from tests.support.identity import local_identity
from tests.support.polling import eventually


class ComponentThread:
    """`serve()` of one component in a thread; `address` is where its gRPC server listens."""

    def __init__(self, settings: Settings, build: Callable[[Context], Parts]) -> None:
        self.settings = settings
        self.address = settings.grpc_address
        self._build = build
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"component-{settings.component}", daemon=True)
        self.context: Context | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        def build(context: Context) -> Parts:
            self.context = context
            return self._build(context)

        try:
            self._loop.run_until_complete(serve(self.settings, build, self._stop))
        except BaseException as exc:  # surfaced by start()/stop()
            self._error = exc

    def start(self, timeout: float = 30.0) -> ComponentThread:
        self._thread.start()

        def serving() -> bool:
            if self._error is not None:
                raise RuntimeError(f"{self.settings.component} failed to start") from self._error
            return health_status(self.address, local_identity().ca, 0.5) == 1

        eventually(serving, f"{self.settings.component} to serve", timeout)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)
        if self._error is not None:
            raise self._error


@contextmanager
def running(
    component: str,
    build: Callable[[Context], Parts],
    data_dir: Path,
    nats_url: str,
    database_url: str,
    others: Mapping[str, str] | None = None,
) -> Iterator[ComponentThread]:
    """One component in-process with its gRPC server, outbox relay and job worker, against real NATS and
    `database_url`. `others` says where its peers listen; the orchestrator's address is a closed port
    (the job worker needs one; tests hand jobs over with `run_job`) unless `others` names it."""
    settings = component_settings(component, data_dir, nats_url, database_url)
    known = {"orchestrator": closed_address(), **(others or {}), component: settings.grpc_address}
    with addresses(known):
        thread = ComponentThread(settings, build).start()
        try:
            yield thread
        finally:
            thread.stop()


def closed_address() -> str:
    """A loopback address nobody listens on: a peer that is down."""
    return f"127.0.0.1:{free_port()}"


def component_settings(
    component: str, data_dir: Path, nats_url: str, database_url: str = "", **overrides: object
) -> Settings:
    """Settings as the environment would give them, pointed at the test's NATS and database."""
    base = Settings.from_env(component)
    return replace(
        base,
        security=local_identity().settings(component),
        data_dir=data_dir,
        database_url=database_url or f"sqlite:///{data_dir / (component + '.db')}",
        nats_url=nats_url,
        grpc_address=f"127.0.0.1:{free_port()}",
        log_format="text",
        **overrides,  # type: ignore[arg-type]
    )


@contextmanager
def addresses(mapping: Mapping[str, str]) -> Iterator[None]:
    """Sets CONSULTFLOW_<COMPONENT>_ADDRESS for the duration (how components find each other)."""
    saved = {k: os.environ.get(k) for k in (f"CONSULTFLOW_{n.upper()}_ADDRESS" for n in mapping)}
    for name, address in mapping.items():
        os.environ[f"CONSULTFLOW_{name.upper()}_ADDRESS"] = address
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
