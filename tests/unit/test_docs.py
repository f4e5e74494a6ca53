"""The generated reference pages match the code they are generated from."""

from __future__ import annotations

import importlib.util
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("docs_generate", DOCS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cli_and_settings_references_are_current() -> None:
    generate = _generator()
    assert generate.stale() == [], "run: python docs/generate.py"


def test_every_setting_and_command_is_in_them() -> None:
    from msgtrail.settings import Settings

    generate = _generator()
    settings, cli = generate.settings_page(), generate.cli_page()
    for name, field in Settings.model_fields.items():
        assert f"`MSGTRAIL_{name.upper()}`" in settings
        assert field.description, f"{name} has no description"
    for command in ("msgtrail serve", "msgtrail worker", "msgtrail apps connect",
                    "msgtrail export", "msgtrail import", "msgtrail db upgrade"):
        assert f"## `{command}`" in cli
