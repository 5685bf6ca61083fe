"""Claim slots: the number a claimable row carries so that one replica handles it (platform/claims.py).

Apart from claims.py so the table definitions can name these column defaults without importing the
lease keeper (which needs the tables)."""

from __future__ import annotations

import weakref
import zlib
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.engine.interfaces import ExecutionContext

SLOTS = 4096
"""Slots a claimable row's key hashes to. Fixed forever (stored in rows): partitions are slots modulo
the partition count, so changing `CONSULTFLOW_CLAIM_PARTITIONS` never rewrites a row."""


def slot_of(key: str) -> int:
    """The slot of a row key (stable across processes and versions: CRC-32, not Python's `hash`)."""
    return zlib.crc32(key.encode()) % SLOTS


def keyed_slot(*columns: str) -> Callable[[ExecutionContext], int]:
    """A column default: the slot of the row's `columns` (everything of one instance shares a slot)."""

    def default(context: ExecutionContext) -> int:
        values = context.get_current_parameters()  # type: ignore[attr-defined]
        return slot_of("\0".join(str(values[c]) for c in columns))

    return default


HOME_SLOTS: weakref.WeakKeyDictionary[Engine, Callable[[], int | None]] = weakref.WeakKeyDictionary()
"""Per engine (one per process and database): the lease keeper's choice of a slot it owns."""


def writer_slot(key_column: str) -> Callable[[ExecutionContext], int]:
    """A column default for rows their writer should handle itself (outbox rows): a slot in a partition
    the writing process owns, else (it owns none yet) the slot of the row's `key_column`."""
    by_key = keyed_slot(key_column)

    def default(context: ExecutionContext) -> int:
        home = HOME_SLOTS.get(context.root_connection.engine)
        slot = home() if home is not None else None
        return slot if slot is not None else by_key(context)

    return default
