"""Turn `make bench` JSON lines (stdin) into the Markdown table of README.md.

`python -m bench.run_all | tee bench.jsonl; python -m bench.table --write-readme < bench.jsonl`
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

START, END = "<!-- bench-table:start -->", "<!-- bench-table:end -->"


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def table(lines: list[str]) -> str:
    out = ["| bench | metric | value | unit | baseline | ratio | notes |", "|---|---|---|---|---|---|---|"]
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        row = json.loads(line)
        if "skipped" in row and "metric" not in row:
            out.append(f"| {row['bench']} | | | | | | skipped: {row['skipped']} |")
            continue
        notes = ", ".join(
            f"{k}={_fmt(v)}" for k, v in row.items()
            if k not in {"bench", "metric", "value", "unit", "baseline", "ratio"} and not isinstance(v, dict | list)
        )
        out.append(f"| {row.get('bench')} | {row.get('metric', '')} | {_fmt(row.get('value'))} | {row.get('unit', '')} | "
                   f"{_fmt(row.get('baseline'))} | {_fmt(row.get('ratio'))} | {notes} |")
    return "\n".join(out) + "\n"


def main() -> None:
    md = table(sys.stdin.read().splitlines())
    if sys.argv[1:] == ["--write-readme"]:
        path = Path(__file__).resolve().parent.parent / "README.md"
        text = path.read_text()
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        path.write_text(f"{head}{START}\n{md}{END}{tail}")
    else:
        sys.stdout.write(md)


if __name__ == "__main__":
    main()
