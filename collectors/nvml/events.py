"""Xid and ECC events through an NVML event set, and lost-GPU recovery, for ``NvmlSampler`` (a
mixin: it uses the sampler's ``nvml`` module, ``gpus``, error classes, ``telemetry``, ``cluster``,
``node``, ``_event_set``, ``_count_error`` and ``_emit``).

The event set is registered once at start for the event types each GPU supports (Xid always);
each pass drains it without waiting (``nvmlEventSetWait_v2(set, 0)``), at most 1,000 events.
"""

from __future__ import annotations

import logging

import pyarrow as pa

from collectors.nvml.state import GpuState
from schemas.tables import GPU_EVENTS

log = logging.getLogger(__name__)


class NvmlEvents:
    def _register_events(self) -> None:
        nv = self.nvml
        try:
            self._event_set = nv.nvmlEventSetCreate()
        except (self._err_base, AttributeError) as exc:
            self._count_error("event_set", exc)
            return
        wanted = nv.nvmlEventTypeXidCriticalError | nv.nvmlEventTypeSingleBitEccError | nv.nvmlEventTypeDoubleBitEccError
        for gpu in self.gpus:
            try:
                try:
                    mask = wanted & nv.nvmlDeviceGetSupportedEventTypes(gpu.handle)
                except self._err_ns:
                    mask = nv.nvmlEventTypeXidCriticalError
                if mask:
                    nv.nvmlDeviceRegisterEvents(gpu.handle, mask, self._event_set)
            except self._err_base as exc:
                self._count_error("event_register", exc)

    def _probe_lost(self, gpu: GpuState, ts_ms: int, events: list[dict]) -> None:
        try:
            self.nvml.nvmlDeviceGetUUID(gpu.handle)
        except self._err_base:
            return
        gpu.lost = False
        gpu.unsupported.clear()
        events.append(self._event_row(ts_ms, gpu.uuid, gpu.index, "gpu_recovered", None, "the GPU answers NVML again"))

    def _drain_events(self, ts_ms: int, events: list[dict]) -> None:
        nv = self.nvml
        by_uuid = {g.uuid: g for g in self.gpus}
        for _ in range(1000):
            try:
                data = nv.nvmlEventSetWait_v2(self._event_set, 0)
            except self._err_timeout:
                return
            except self._err_base as exc:
                self._count_error("event_wait", exc)
                return
            try:
                uuid = nv.nvmlDeviceGetUUID(data.device)
            except self._err_base:
                uuid = ""
            gpu = by_uuid.get(uuid)
            index = gpu.index if gpu else None
            etype = int(data.eventType)
            if etype & nv.nvmlEventTypeXidCriticalError:
                self.telemetry.add("gpu_events", component="nvml", kind="xid")
                events.append(self._event_row(ts_ms, uuid, index, "xid", int(data.eventData),
                                              f"Xid {int(data.eventData)} reported by the driver"))
            elif etype & (nv.nvmlEventTypeSingleBitEccError | nv.nvmlEventTypeDoubleBitEccError):
                kind = "double-bit" if etype & nv.nvmlEventTypeDoubleBitEccError else "single-bit"
                self.telemetry.add("gpu_events", component="nvml", kind="ecc")
                events.append(self._event_row(ts_ms, uuid, index, "ecc", None, f"{kind} ECC error event"))

    def _event_row(self, ts_ms: int, uuid: str, index: int | None, kind: str, xid: int | None, detail: str) -> dict:
        return {"ts": ts_ms, "cluster": self.cluster, "node": self.node, "gpu_uuid": uuid, "gpu_index": index,
                "event_kind": kind, "xid": xid, "detail": detail, "source": "nvml"}

    def _emit_events(self, rows: list[dict]) -> None:
        if rows:
            self._emit("gpu_events", pa.Table.from_pylist(rows, schema=GPU_EVENTS))
