"""Builds the expert-routing components of the sidecar from its config.

Sources: every ``[[collect.engines]]`` entry with ``expert_dump_dir`` (a dump watcher) or
``eplb_log_file`` (an EPLB log tailer), plus the extra ``[collect.experts]`` ``dumps`` /
``eplb_logs`` lists. Knobs (poll interval, window, settle time) come from ``[collect.experts]``.
The push endpoint is not a component: the OTLP HTTP receiver mounts ``push.handle_push``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from collectors.component import Component, Consumer
from collectors.experts.config import EplbLogSource, ExpertDumpSource, ExpertsConfig
from collectors.experts.eplb_log import EplbLogTailer
from collectors.experts.watcher import ExpertDumpWatcher
from collectors.telemetry import Telemetry


def expert_sources(config: Any) -> tuple[ExpertsConfig, list[ExpertDumpSource], list[EplbLogSource]]:
    """The experts knobs and every dump folder / log file the config names (deduplicated)."""
    knobs = getattr(config, "experts", None) or ExpertsConfig()
    dumps = {s.directory: s for s in knobs.dumps}
    logs = {s.path: s for s in knobs.eplb_logs}
    for engine in getattr(config, "engines", None) or []:
        if getattr(engine, "expert_dump_dir", None):
            src = ExpertDumpSource(engine_instance=engine.instance, model=engine.model, directory=Path(engine.expert_dump_dir))
            dumps.setdefault(src.directory, src)
        if getattr(engine, "eplb_log_file", None):
            src = EplbLogSource(engine_instance=engine.instance, model=engine.model, path=Path(engine.eplb_log_file))
            logs.setdefault(src.path, src)
    return knobs, list(dumps.values()), list(logs.values())


def create_components(config: Any, consumer: Consumer, telemetry: Telemetry) -> list[Component]:
    """One watcher per dump folder and one tailer per EPLB log file (none when disabled)."""
    knobs, dumps, logs = expert_sources(config)
    if not knobs.enabled:
        return []
    cluster = getattr(config, "cluster", "default") or "default"
    components: list[Component] = []
    for d in dumps:
        components.append(ExpertDumpWatcher(
            d.directory,
            engine_instance=d.engine_instance,
            model=d.model,
            cluster=cluster,
            consumer=consumer,
            telemetry=telemetry,
            interval_s=knobs.poll_interval_s,
            window_s=knobs.window_s,
            settle_s=knobs.settle_s,
            rank_merge_s=knobs.rank_merge_s,
            read_existing=knobs.read_existing,
        ))
    for lg in logs:
        components.append(EplbLogTailer(
            lg.path,
            engine_instance=lg.engine_instance,
            model=lg.model,
            cluster=cluster,
            consumer=consumer,
            telemetry=telemetry,
            interval_s=knobs.poll_interval_s,
            read_existing=knobs.read_existing,
            max_pending_rows=knobs.max_pending_rows,
        ))
    return components
