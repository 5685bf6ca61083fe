"""Each component's schema comes from its Alembic migrations, and they match its models exactly."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from consultflow import COMPONENTS
from consultflow.platform import tables
from consultflow.platform.db import Database, migrate, orm_module


@pytest.mark.parametrize("component", COMPONENTS)
def test_migrations_create_the_modelled_schema(component: str, database_url: str) -> None:
    db = Database(database_url)
    migrate(db, component)
    migrate(db, component)  # upgrading an up-to-date schema is a no-op
    try:
        models = orm_module(component)
        metadata = [models.Base.metadata, tables.metadata]
    except ModuleNotFoundError:
        metadata = [tables.metadata]
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = [
            d
            for d in compare_metadata(context, metadata)  # type: ignore[arg-type]
            if d[0] != "remove_table" or d[1].name != "alembic_version"
        ]
    db.dispose()
    assert differences == [], f"models and migrations of {component} differ: write a migration"
