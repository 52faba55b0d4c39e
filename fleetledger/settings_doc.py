"""Print the configuration reference (every setting, its env variable, default, meaning) as Markdown.

`python -m fleetledger.settings_doc --write-readme` regenerates the table in README.md; a test
keeps them equal.
"""

from __future__ import annotations

from pathlib import PurePath

from pydantic import BaseModel

from fleetledger.settings import Settings


def _default(field) -> str:
    value = field.default_factory() if field.default_factory is not None else field.default
    if isinstance(value, BaseModel):
        return ""
    return repr(str(value)) if isinstance(value, PurePath) else repr(value)


def rows(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str, str, str]]:
    out = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out.extend(rows(ann, key + "."))
            continue
        env = "FLEETLEDGER_" + key.replace(".", "__").upper()
        out.append((key, env, _default(field), (field.description or "").replace("|", "\\|")))
    return out


def markdown() -> str:
    lines = ["| setting (TOML key) | environment | default | meaning |", "|---|---|---|---|"]
    for key, env, default, desc in rows(Settings):
        lines.append(f"| `{key}` | `{env}` | `{default}` | {desc} |")
    return "\n".join(lines) + "\n"


START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"


def readme_with_table(readme: str) -> str:
    """README text with the generated table between its markers."""
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{markdown()}{END}{tail}"


if __name__ == "__main__":
    import sys
    from pathlib import Path

    if sys.argv[1:] == ["--write-readme"]:
        path = Path(__file__).resolve().parent.parent / "README.md"
        path.write_text(readme_with_table(path.read_text()))
    else:
        print(markdown(), end="")
