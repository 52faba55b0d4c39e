"""`make bench`: run every benchmark in its own process and print its JSON lines.

Each benchmark prints its figure and its baseline measured side by side in the same run.
``--quick`` passes small sizes through (seconds each); ``--only NAME`` runs one.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

BENCHES = [
    "store_ingest", "simulator", "sampler", "spool", "otlp_receive", "attribution", "experts", "dashboards",
]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only", action="append", default=[])
    args = p.parse_args(argv)
    here = Path(__file__).parent
    failures = 0
    for name in args.only or BENCHES:
        if not (here / f"{name}.py").exists():
            print(json.dumps({"bench": name, "skipped": "not present in this build"}), flush=True)
            continue
        cmd = [sys.executable, "-m", f"bench.{name}"] + (["--quick"] if args.quick else [])
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=here.parent, stdout=subprocess.PIPE, text=True)
        sys.stdout.write(proc.stdout)
        if proc.returncode != 0:
            failures += 1
            print(json.dumps({"bench": name, "error": f"exit code {proc.returncode}",
                              "wall_s": round(time.perf_counter() - t0, 2)}), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
