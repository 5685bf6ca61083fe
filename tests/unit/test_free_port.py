"""free_port hands out loopback ports from below the kernel's ephemeral range, never one that is held."""

from __future__ import annotations

import socket

import pytest

from consultflow.cli import system
from consultflow.cli.system import LOCAL_PORTS_ENV, _PortPicker, local_port_range


def hold(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock


def test_ports_come_from_below_the_ephemeral_range_unrepeated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LOCAL_PORTS_ENV, raising=False)
    low, high = local_port_range()
    picker = _PortPicker()
    ports = [picker.pick() for _ in range(50)]
    assert all(low <= port <= high for port in ports)
    assert high == max(system._ephemeral_start() - 1, low + 999)
    assert len(set(ports)) == 50


def test_a_held_port_is_passed_over(monkeypatch: pytest.MonkeyPatch) -> None:
    picker = _PortPicker()
    first = picker.pick()
    monkeypatch.setenv(LOCAL_PORTS_ENV, f"{first}-{first + 1}")
    held = hold(first)
    try:
        picker._next = first  # the cursor stands on the held port
        assert picker.pick() == first + 1
    finally:
        held.close()


def test_a_range_all_held_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    port = _PortPicker().pick()
    monkeypatch.setenv(LOCAL_PORTS_ENV, f"{port}-{port}")
    held = hold(port)
    try:
        with pytest.raises(RuntimeError, match=f"no free loopback port in {port}-{port}"):
            _PortPicker().pick()
    finally:
        held.close()
