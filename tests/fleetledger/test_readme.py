"""README promises that can drift: the configuration table and the two commands."""

from __future__ import annotations

from pathlib import Path

from fleetledger.settings_doc import readme_with_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_configuration_table_matches_the_settings():
    text = README.read_text()
    assert readme_with_table(text) == text, "run: python -m fleetledger.settings_doc --write-readme"


def test_readme_starts_with_the_two_commands():
    head = README.read_text()[:3000]
    assert "make demo" in head and "make test" in head
    makefile = (README.parent / "Makefile").read_text()
    assert "\ndemo:" in makefile and "\ntest:" in makefile
