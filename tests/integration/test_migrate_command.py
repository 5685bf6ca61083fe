"""`python -m consultflow.platform.migrate` upgrades a component's schema alone, as production's Jobs do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import inspect

from consultflow.platform.db import Database


def test_the_migrate_command_creates_the_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    env = {**os.environ, "CONSULTFLOW_CRM_DATABASE_URL": url, "CONSULTFLOW_LOG_LEVEL": "WARNING"}
    done = subprocess.run(
        [sys.executable, "-m", "consultflow.platform.migrate", "crm"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    db = Database(url)
    assert {"inquiries", "outbox", "processed_jobs", "alembic_version"} <= set(
        inspect(db.engine).get_table_names()
    )
    db.dispose()
    wrong = subprocess.run(
        [sys.executable, "-m", "consultflow.platform.migrate", "nope"], capture_output=True, check=False
    )
    assert wrong.returncode == 2
