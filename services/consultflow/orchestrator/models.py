"""The old name of orm.py, kept only for what still looks up `consultflow.<component>.models`: the schema
check in tests/integration/test_migrations.py, which the branch renaming every service's models.py to
orm.py changes. Remove this module once that check looks for `orm`; import from orm.py meanwhile."""

from consultflow.orchestrator.orm import Base

__all__ = ["Base"]
