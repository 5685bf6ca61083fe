"""Writes a new Alembic revision for a component by comparing its models with its migrated schema.

usage: python scripts/new_migration.py COMPONENT "what changed"

The result is explicit `op.*` code: review it, then commit it. Migrations are never edited after they
landed; a change of schema is a new revision.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command

from consultflow.platform import tables as platform_tables
from consultflow.platform.db import Database, alembic_config, migrate, orm_module


def main() -> None:
    component, message = sys.argv[1], sys.argv[2]
    models = orm_module(component)
    with tempfile.TemporaryDirectory() as folder:
        db = Database(f"sqlite:///{Path(folder) / 'schema.db'}")
        migrate(db, component)
        config = alembic_config(component)
        versions = Path(models.__file__).parent / "migrations"
        with db.engine.begin() as connection:
            config.attributes["connection"] = connection
            config.attributes["target_metadata"] = [models.Base.metadata, platform_tables.metadata]
            command.revision(
                config,
                message=message,
                autogenerate=True,
                head=f"{component}@head" if _has_revisions(versions) else "base",
                branch_label=None if _has_revisions(versions) else component,
                version_path=str(versions),
            )


def _has_revisions(folder: Path) -> bool:
    return any(p.suffix == ".py" and p.name != "__init__.py" for p in folder.glob("*.py"))


if __name__ == "__main__":
    main()
