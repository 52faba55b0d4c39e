"""Same seed, same output (files byte for byte); another seed, other output."""

from __future__ import annotations

import hashlib
from pathlib import Path

from simulator.api import simulate


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_files_and_other_seed_differs(tmp_path):
    a = simulate(hours=0.1, nodes=3, seed=3, out=tmp_path / "a", write_pt=False)
    b = simulate(hours=0.1, nodes=3, seed=3, out=tmp_path / "b", write_pt=False)
    c = simulate(hours=0.1, nodes=3, seed=4, out=tmp_path / "c", write_pt=False)
    da, db, dc = _digest(tmp_path / "a"), _digest(tmp_path / "b"), _digest(tmp_path / "c")
    # fleet.toml holds absolute dump paths, which differ by folder: compare it without them
    for d, root in ((da, "a"), (db, "b")):
        text = (tmp_path / root / "fleet.toml").read_text().replace(str(tmp_path / root), "<out>")
        d["fleet.toml"] = hashlib.sha256(text.encode()).hexdigest()
    assert da == db
    assert len(da) >= 8  # fleet, prices, reservations, two truths, planted, dumps, a log
    assert da["ground_truth_requests.parquet"] != dc["ground_truth_requests.parquet"]
    assert a.requests == b.requests and a.requests != c.requests
