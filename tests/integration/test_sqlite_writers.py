"""SQLite writers of one process take turns (platform/db.py, `_Writers`) and keep SQLite's semantics: the
next writer waits and starts when the last one ends; a turn held past the busy timeout fails the next
writer as SQLite's lock did (Unavailable); a transaction that ends in any way gives its turn up, so no
turn is ever lost. How much sooner the next writer starts is a figure, not a test: `make bench-system`
(docs/performance.md)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import exc, text

from consultflow.platform.db import Database, busy_error
from consultflow.platform.errors import Unavailable


@pytest.fixture
def databases(sqlite_url: str) -> Iterator[tuple[Database, Database]]:
    """Two engines on one file, as a component's use cases and its relay or a test's harness have."""
    first, second = Database(sqlite_url, busy_timeout_ms=300), Database(sqlite_url, busy_timeout_ms=300)
    with first.engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS notes (writer TEXT)"))
    yield first, second
    first.dispose()
    second.dispose()


def write(db: Database, writer: str) -> None:
    with db.session() as session, session.begin():
        session.execute(text("INSERT INTO notes VALUES (:w)"), {"w": writer})


def test_the_next_writer_starts_when_the_last_one_ends(databases: tuple[Database, Database]) -> None:
    first, second = databases
    order: list[str] = []
    holding = threading.Event()
    release = threading.Event()

    def long_writer() -> None:
        with first.session() as session, session.begin():
            session.execute(text("INSERT INTO notes VALUES ('first')"))
            holding.set()
            release.wait(5)
            order.append("first commits")

    thread = threading.Thread(target=long_writer)
    thread.start()
    assert holding.wait(5)

    def second_writer() -> None:
        write(second, "second")
        order.append("second wrote")

    waiting = threading.Thread(target=second_writer)
    waiting.start()
    waiting.join(0.1)
    assert waiting.is_alive() and order == [], "the second writer waits for its turn"
    release.set()
    thread.join(5)
    waiting.join(5)
    assert order == ["first commits", "second wrote"]
    with first.read() as session:
        assert sorted(session.execute(text("SELECT writer FROM notes")).scalars()) == ["first", "second"]


def test_a_turn_held_past_the_busy_timeout_fails_the_next_writer_as_unavailable(
    databases: tuple[Database, Database],
) -> None:
    first, second = databases
    with first.session() as session, session.begin():
        session.execute(text("INSERT INTO notes VALUES ('first')"))
        with pytest.raises(exc.OperationalError) as raised:
            write(second, "second")
    assert isinstance(busy_error(raised.value), Unavailable)
    write(second, "second")  # the turn came back when the first transaction ended


@pytest.mark.parametrize("ending", ["rolled back", "closed without a commit", "invalidated"])
def test_a_transaction_that_ends_any_way_gives_its_turn_up(
    databases: tuple[Database, Database], ending: str
) -> None:
    first, second = databases
    session = first.session()
    session.begin()
    session.execute(text("INSERT INTO notes VALUES ('first')"))
    if ending == "rolled back":
        session.rollback()
    elif ending == "invalidated":
        session.connection().invalidate()
    session.close()
    write(second, "second")  # would fail after the busy timeout if the turn were still held
    with second.read() as check:
        assert list(check.execute(text("SELECT writer FROM notes")).scalars()) == ["second"]
