"""docs/configuration.md is generated from the settings table and must not drift from it."""

from pathlib import Path

from consultflow.platform.settings import SETTINGS, Settings, configuration_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_configuration_doc_is_current() -> None:
    assert (ROOT / "docs" / "configuration.md").read_text() == configuration_markdown(), (
        "run `make docs` and commit docs/configuration.md"
    )


def test_every_setting_is_read(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CONSULTFLOW_TIME_SCALE", "0.5")
    monkeypatch.setenv("CONSULTFLOW_CRM_DATABASE_URL", "sqlite:///x.db")
    settings = Settings.from_env("crm")
    assert settings.time_scale == 0.5
    assert settings.database_url == "sqlite:///x.db"
    assert Settings.from_env("risk").database_url.endswith("risk.db")
    assert all(s.name.startswith("CONSULTFLOW_") for s in SETTINGS)
