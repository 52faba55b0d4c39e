"""DCGM exporter text -> contract rows (pure functions, no I/O).

Parsed with ``prometheus_client.parser``. One ``gpu_samples`` row per GPU (label ``UUID``) and
MIG instance (``GPU_I_PROFILE`` / ``GPU_I_ID``) per scrape; ``source = 'dcgm'``. Fields and units
(dcgm-exporter's default counters):

==========================================  ======================  ==========================
DCGM field                                  column                  unit conversion
==========================================  ======================  ==========================
DCGM_FI_DEV_GPU_UTIL                        sm_util_pct             %
DCGM_FI_PROF_GR_ENGINE_ACTIVE               gr_engine_active        ratio 0..1
DCGM_FI_DEV_MEM_COPY_UTIL                   mem_util_pct            %
DCGM_FI_DEV_FB_USED                         memory_used_bytes       MiB -> bytes
DCGM_FI_DEV_FB_TOTAL, else USED+FREE+RESERVED  memory_total_bytes   MiB -> bytes
DCGM_FI_DEV_POWER_USAGE                     power_w                 W
DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION        energy_mj               mJ
DCGM_FI_DEV_SM_CLOCK / MEM_CLOCK            sm_clock_mhz / mem_...  MHz
DCGM_FI_DEV_GPU_TEMP                        temperature_c           C
DCGM_FI_DEV_CLOCKS_EVENT_REASONS            throttle_reasons        bitmask (older name
  (or DCGM_FI_DEV_CLOCK_THROTTLE_REASONS)                             accepted)
DCGM_FI_DEV_ECC_SBE_VOL_TOTAL / DBE_...     ecc_sbe_total / dbe     count
==========================================  ======================  ==========================

The node is the ``Hostname`` label (dcgm-exporter's default) or ``hostname`` (some versions and
relabelling setups), else the sidecar's node. With Kubernetes pod mapping on, dcgm-exporter adds
``pod``/``namespace``/``container`` to the series of a GPU in use: each distinct triple becomes a
``gpu_processes`` row with ``pid = 0`` (DCGM does not name processes) and null memory/utilisation
(DCGM's figures are per GPU). ``DCGM_FI_DEV_XID_ERRORS`` (the last Xid seen) becomes a
``gpu_events`` row whenever it changes to a non-zero value.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa
from prometheus_client.parser import text_string_to_metric_families

from schemas.tables import GPU_EVENTS, GPU_PROCESSES, GPU_SAMPLES

MIB = 1024 * 1024

# DCGM field -> (column, multiplier, integer?)
FIELD_MAP: dict[str, tuple[str, float, bool]] = {
    "DCGM_FI_DEV_GPU_UTIL": ("sm_util_pct", 1.0, False),
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE": ("gr_engine_active", 1.0, False),
    "DCGM_FI_DEV_MEM_COPY_UTIL": ("mem_util_pct", 1.0, False),
    "DCGM_FI_DEV_FB_USED": ("memory_used_bytes", MIB, True),
    "DCGM_FI_DEV_FB_TOTAL": ("memory_total_bytes", MIB, True),
    "DCGM_FI_DEV_POWER_USAGE": ("power_w", 1.0, False),
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": ("energy_mj", 1.0, True),
    "DCGM_FI_DEV_SM_CLOCK": ("sm_clock_mhz", 1.0, True),
    "DCGM_FI_DEV_MEM_CLOCK": ("mem_clock_mhz", 1.0, True),
    "DCGM_FI_DEV_GPU_TEMP": ("temperature_c", 1.0, False),
    "DCGM_FI_DEV_CLOCKS_EVENT_REASONS": ("throttle_reasons", 1.0, True),
    "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS": ("throttle_reasons", 1.0, True),
    "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL": ("ecc_sbe_total", 1.0, True),
    "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL": ("ecc_dbe_total", 1.0, True),
}
_FB_PARTS = ("DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_FB_RESERVED")
_XID = "DCGM_FI_DEV_XID_ERRORS"
_VALUE_COLUMNS = sorted({c for c, _, _ in FIELD_MAP.values()})


class DcgmParseError(ValueError):
    """The scrape body is not Prometheus text exposition."""


def _samples(text: str) -> Iterable:
    try:
        for family in text_string_to_metric_families(text):
            yield from family.samples
    except (ValueError, TypeError, IndexError) as exc:
        raise DcgmParseError(f"not Prometheus text format: {exc}") from None


def map_dcgm(
    text: str, ts_ms: int, cluster: str, default_node: str, last_xid: dict[str, int] | None = None
) -> dict[str, pa.Table]:
    """Rows for every contract table found in one scrape body; ``last_xid`` (per GPU UUID) is
    updated in place so an unchanged last-Xid gauge is not reported twice."""
    rows: dict[tuple[str, str, str], dict] = {}
    fb_parts: dict[tuple[str, str, str], float] = {}
    pods: dict[tuple[str, str, str, str, str], int] = {}
    xids: list[dict] = []
    for s in _samples(text):
        labels = s.labels
        uuid = labels.get("UUID")
        if not uuid:
            continue
        node = labels.get("Hostname") or labels.get("hostname") or default_node
        key = (uuid, labels.get("GPU_I_PROFILE", ""), labels.get("GPU_I_ID", ""))
        ts = int(s.timestamp * 1000) if s.timestamp is not None else ts_ms
        row = rows.get(key)
        if row is None:
            try:
                index = int(labels.get("gpu", ""))
            except ValueError:
                index = 0
            row = rows[key] = {"ts": ts, "cluster": cluster, "node": node, "gpu_uuid": uuid, "gpu_index": index,
                               "gpu_model": labels.get("modelName", ""), "mig_profile": key[1],
                               "mig_instance": key[2], "source": "dcgm"}
        value = s.value
        if value != value:  # NaN: a field DCGM could not read
            continue
        if s.name in FIELD_MAP:
            column, mult, integer = FIELD_MAP[s.name]
            row[column] = int(round(value * mult)) if integer else value * mult
        elif s.name in _FB_PARTS:
            fb_parts[key] = fb_parts.get(key, 0.0) + value
        elif s.name == _XID and last_xid is not None:
            xid = int(value)
            if xid and last_xid.get(uuid) != xid:
                xids.append({"ts": ts, "cluster": cluster, "node": node, "gpu_uuid": uuid,
                             "gpu_index": row["gpu_index"], "event_kind": "xid", "xid": xid,
                             "detail": f"DCGM last Xid changed to {xid}", "source": "dcgm"})
            last_xid[uuid] = xid
        pod = labels.get("pod", "")
        if pod:
            pods.setdefault((uuid, node, pod, labels.get("namespace", ""), labels.get("container", "")), ts)
    for key, extra in fb_parts.items():
        row = rows[key]
        if row.get("memory_total_bytes") is None and row.get("memory_used_bytes") is not None:
            row["memory_total_bytes"] = row["memory_used_bytes"] + int(round(extra * MIB))
    out: dict[str, pa.Table] = {}
    if rows:
        ordered = sorted(rows.values(), key=lambda r: (r["node"], r["gpu_index"], r["mig_profile"], r["mig_instance"]))
        out["gpu_samples"] = pa.Table.from_pylist(ordered, schema=GPU_SAMPLES)
    if pods:
        out["gpu_processes"] = pa.Table.from_pylist([
            {"ts": ts, "cluster": cluster, "node": node, "gpu_uuid": uuid, "pid": 0, "process_name": "",
             "container_id": "", "pod": pod, "namespace": ns, "container": container,
             "used_memory_bytes": None, "sm_util_pct": None, "source": "dcgm"}
            for (uuid, node, pod, ns, container), ts in sorted(pods.items())
        ], schema=GPU_PROCESSES)
    if xids:
        out["gpu_events"] = pa.Table.from_pylist(xids, schema=GPU_EVENTS)
    return out
