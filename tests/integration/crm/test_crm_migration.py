"""Upgrading a crm database from the skeleton's schema keeps its inquiries and turns their contacts into
contact rows."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from consultflow.crm import usecases
from consultflow.platform.db import Database, alembic_config


def _upgrade(db: Database, target: str) -> None:
    with db.engine.begin() as connection:
        config = alembic_config("crm")
        config.attributes["connection"] = connection
        command.upgrade(config, target)


def test_existing_inquiries_survive_the_upgrade(database_url: str) -> None:
    db = Database(database_url)
    _upgrade(db, "3cd5b0f20b71")  # the skeleton's crm schema
    with db.engine.begin() as connection:
        connection.execute(text("INSERT INTO clients VALUES ('c-1', 'ACME', 'lighting', CURRENT_TIMESTAMP)"))
        for inquiry_id, name in (("i-1", "Li Lei"), ("i-2", "li lei "), ("i-3", "Han Meimei")):
            connection.execute(
                text(
                    "INSERT INTO inquiries (inquiry_id, request_id, engagement_id, channel, client_id, "
                    "contact_name, contact_email, contact_phone, question, status, received_at) VALUES "
                    "(:id, NULL, 'E-1', 'email', 'c-1', :name, 'x@acme.example', '', 'q', 'open', "
                    "CURRENT_TIMESTAMP)"
                ),
                {"id": inquiry_id, "name": name},
            )
    _upgrade(db, "heads")
    with db.read() as session:
        contacts = usecases.contacts_of(session, ["c-1"])["c-1"]
        assert sorted(c.name for c in contacts) == ["Han Meimei", "Li Lei"]
        inquiries = usecases.list_inquiries(session, None, "E-1", 10, 0)
        by_name = {c.name: c.contact_id for c in contacts}
        linked = {i.inquiry_id: i.contact_id for i, _ in inquiries}
        assert linked == {"i-1": by_name["Li Lei"], "i-2": by_name["Li Lei"], "i-3": by_name["Han Meimei"]}
        assert {i.decline_reason for i, _ in inquiries} == {""}
    db.dispose()
