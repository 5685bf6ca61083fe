"""`python -m consultflow.platform.migrate COMPONENT`: upgrade one component's schema, then exit.

Production runs this once per release (a Kubernetes Job, deploy/README.md) with the schema owner's
database URL, and starts the components with CONSULTFLOW_MIGRATE_AT_START=false.
"""

from __future__ import annotations

import sys

from consultflow import COMPONENTS
from consultflow.platform.db import Database, migrate
from consultflow.platform.logging import configure_logging
from consultflow.platform.settings import Settings


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in COMPONENTS:
        print(f"usage: python -m consultflow.platform.migrate {{{','.join(COMPONENTS)}}}", file=sys.stderr)
        return 2
    settings = Settings.from_env(argv[0])
    configure_logging(settings.component, settings.log_level, settings.log_format, settings.log_redact_fields)
    db = Database(settings.database_url)
    try:
        migrate(db, settings.component)
    finally:
        db.dispose()
    print(f"{settings.component}: schema is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
