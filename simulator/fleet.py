"""The fleet description: nodes and GPUs, engine instances, reservations, workflows, faults.

Two TOML forms are read by :func:`load_fleet`:
- a *template* (``simulator/default_fleet.toml``): ``[fleet]`` options, ``[[node_template]]``
  cycled to build N nodes, ``[[workflow]]`` and ``[[fault]]``;
- a *concrete* fleet (``fleet.toml`` written by ``fleetledger simulate``), which is also a valid
  sidecar config: ``[collect]`` with ``cluster`` and ``[[collect.engines]]`` (interfaces.md), and
  the rest of the description under ``[collect.simulated_fleet]``.

Every GPU is covered by exactly one reservation at any instant of the window (checked here).
"""

from __future__ import annotations

import hashlib
import string
import tomllib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from simulator import toml_writer
from simulator.catalogue import MODELS, GpuSpec, ModelSpec, gpu_spec, model_spec

DEFAULT_FLEET_FILE = Path(__file__).with_name("default_fleet.toml")
LONG_BEFORE = timedelta(days=30)
LONG_AFTER = timedelta(days=365)
PCI_BUS = ["18", "2A", "3A", "5D", "9A", "AB", "BA", "DB"]


class FleetError(ValueError):
    """A fleet description that cannot be simulated; the message says what and where."""


@dataclass
class Gpu:
    uuid: str
    index: int
    node: str
    model: str  # catalogue key

    @property
    def spec(self) -> GpuSpec:
        return gpu_spec(self.model)

    @property
    def pci_bus_id(self) -> str:
        return f"00000000:{PCI_BUS[self.index % 8]}:00.0"


@dataclass
class Node:
    name: str
    gpu_model: str
    gpus: list[Gpu]


@dataclass
class Engine:
    instance: str
    engine_kind: str  # 'vllm' | 'sglang'
    model: str  # catalogue key
    node: str
    gpu_uuids: list[str]
    tp: int = 1
    pp: int = 1
    ep: int = 1
    dp: int = 1
    service_name: str = ""
    process_id: str = ""
    vllm_metrics: str = "v0.33"  # 'v0.33' new names only | 'v0.10' old + new names
    eplb: bool = False  # vLLM EPLB log lines
    expert_dump_dir: str = ""  # set when the simulator writes files (absolute paths)
    eplb_log_file: str = ""

    @property
    def spec(self) -> ModelSpec:
        return model_spec(self.model)

    def sidecar_entry(self) -> dict[str, Any]:
        """The ``[[collect.engines]]`` entry (interfaces.md, EngineConfig)."""
        entry = {
            "instance": self.instance, "engine_kind": self.engine_kind, "model": self.model,
            "node": self.node, "gpu_uuids": list(self.gpu_uuids), "tp": self.tp, "pp": self.pp,
            "ep": self.ep, "dp": self.dp, "service_name": self.service_name,
        }
        if self.process_id:
            entry["process_id"] = self.process_id
        if self.expert_dump_dir:
            entry["expert_dump_dir"] = self.expert_dump_dir
        if self.eplb_log_file:
            entry["eplb_log_file"] = self.eplb_log_file
        return entry


@dataclass
class Reservation:
    reservation_id: str
    provider: str
    pricing_model: str
    gpu_model: str  # NVML name, like gpu_samples.gpu_model
    cluster: str
    nodes: list[str]
    gpu_uuids: list[str]
    usd_per_gpu_hour: float
    owner_team: str
    valid_from: datetime
    valid_to: datetime


@dataclass
class Workflow:
    name: str
    rate_per_s: float
    diurnal_amplitude: float
    peak_hour_utc: float
    bursts_per_hour: float
    burst_multiplier: float
    burst_duration_s: float
    prompt_median: float
    prompt_sigma: float
    prompt_max: int
    output_median: float
    output_sigma: float
    max_tokens: int
    cache_hit_prob: float
    cache_fraction: list[float]
    tenants: dict[str, float]
    routes: dict[str, float]
    reasoning_modes: dict[str, float]
    models: dict[str, float]


@dataclass
class Fault:
    kind: str  # 'xid' | 'lost' | 'ecc_sbe' | 'ecc_dbe'
    node: str
    gpu_index: int
    at: float  # fraction of the window
    xid: int = 0
    count: int = 1


@dataclass
class Fleet:
    cluster: str
    start: datetime
    hours: float
    seed: int
    nodes: list[Node]
    engines: list[Engine]
    reservations: list[Reservation]
    workflows: list[Workflow]
    faults: list[Fault] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.hours * 3600.0

    @property
    def gpus(self) -> list[Gpu]:
        return [g for n in self.nodes for g in n.gpus]

    def gpu(self, uuid: str) -> Gpu:
        for g in self.gpus:
            if g.uuid == uuid:
                return g
        raise KeyError(uuid)

    def option(self, name: str, default: Any) -> Any:
        return self.options.get(name, default)

    def rate_segments(self, gpu_uuid: str) -> list[tuple[float, float, float, Reservation]]:
        """(from_s, to_s, usd_per_s, reservation) pieces covering [0, duration] for one GPU."""
        out = []
        for r in self.reservations:
            if gpu_uuid not in r.gpu_uuids:
                continue
            a = max(0.0, (r.valid_from - self.start).total_seconds())
            b = min(self.duration_s, (r.valid_to - self.start).total_seconds())
            if b > a:
                out.append((a, b, r.usd_per_gpu_hour / 3600.0, r))
        return sorted(out, key=lambda s: s[0])

    def validate(self) -> None:
        seen: dict[str, str] = {}
        for e in self.engines:
            if not e.gpu_uuids:
                raise FleetError(f"engine {e.instance}: no GPUs")
            for u in e.gpu_uuids:
                if u in seen:
                    raise FleetError(f"GPU {u} is used by both {seen[u]} and {e.instance}")
                seen[u] = e.instance
                self.gpu(u)
        for g in self.gpus:
            t = 0.0
            for a, b, _, r in self.rate_segments(g.uuid):
                if abs(a - t) > 1e-6:
                    raise FleetError(
                        f"GPU {g.uuid} on {g.node}: reservations leave a gap or overlap at {t:.0f} s "
                        f"(next is {r.reservation_id} from {a:.0f} s); every GPU needs exactly one at any time"
                    )
                t = b
            if abs(t - self.duration_s) > 1e-6:
                raise FleetError(f"GPU {g.uuid} on {g.node}: no reservation after {t:.0f} s of the window")


def gpu_uuid_for(cluster: str, node: str, index: int) -> str:
    h = hashlib.sha1(f"{cluster}/{node}/{index}".encode()).hexdigest()
    return f"GPU-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def node_name(i: int) -> str:
    letters = string.ascii_lowercase
    name = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        name = letters[r] + name
    return f"node-{name}"


def parse_time(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise FleetError(f"time {value!r}: expected ISO-8601 like 2026-11-29T00:00:00Z") from None
    return dt.astimezone(UTC) if dt.tzinfo else dt.replace(tzinfo=UTC)


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def load_fleet(path: Path | str | None = None, *, nodes: int | None = None, hours: float | None = None,
               seed: int | None = None, start: str | datetime | None = None) -> Fleet:
    """Read a template or concrete fleet file; keyword arguments override the file's values."""
    path = Path(path) if path else DEFAULT_FLEET_FILE
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise FleetError(f"{path}: cannot read fleet description: {exc}") from None
    if "collect" in doc:
        fleet = _from_concrete(doc)
        if nodes is not None and nodes != len(fleet.nodes):
            raise FleetError(f"{path} is a concrete fleet of {len(fleet.nodes)} nodes; --nodes needs a template")
        overrides = {"hours": hours, "seed": seed, "start": parse_time(start) if start else None}
        for k, v in overrides.items():
            if v is not None:
                setattr(fleet, k, v)
    else:
        fleet = build_from_template(doc, nodes=nodes, hours=hours, seed=seed, start=start)
    fleet.validate()
    return fleet


def build_from_template(doc: dict[str, Any], *, nodes: int | None = None, hours: float | None = None,
                        seed: int | None = None, start: str | datetime | None = None) -> Fleet:
    opts = dict(doc.get("fleet", {}))
    templates = doc.get("node_template", [])
    if not templates:
        raise FleetError("fleet template has no [[node_template]]")
    n_nodes = 2 if nodes is None else nodes
    if n_nodes < 1:
        raise FleetError(f"--nodes {n_nodes}: need at least one node")
    cluster = opts.pop("cluster", "default")
    t0 = parse_time(start if start is not None else opts.pop("start", "2026-11-29T00:00:00Z"))
    opts.pop("start", None)
    hrs = float(hours if hours is not None else opts.pop("hours", 1))
    opts.pop("hours", None)
    sd = int(seed if seed is not None else opts.pop("seed", 0))
    opts.pop("seed", None)
    if hrs <= 0:
        raise FleetError(f"hours {hrs}: must be positive")
    duration = timedelta(hours=hrs)
    provider = opts.get("provider", "aws")
    counters: dict[str, int] = {}
    node_list, engines, reservations = [], [], []
    for i in range(n_nodes):
        tpl = templates[i % len(templates)]
        name = node_name(i)
        spec = gpu_spec(tpl["gpu_model"])
        gpus = [Gpu(gpu_uuid_for(cluster, name, k), k, name, spec.key) for k in range(int(tpl["gpus"]))]
        node_list.append(Node(name, spec.key, gpus))
        for e in tpl.get("engines", []):
            ms = model_spec(e["model"])
            key = f"{e['engine_kind']}-{ms.key}"
            n = counters.get(key, 0)
            counters[key] = n + 1
            try:
                uuids = [gpus[k].uuid for k in e["gpus"]]
            except IndexError:
                raise FleetError(f"node template {i % len(templates)}: engine {key} uses a GPU index past "
                                 f"{len(gpus) - 1}") from None
            kind = e["engine_kind"]
            engines.append(Engine(
                instance=f"{key}-{n}", engine_kind=kind, model=ms.key, node=name, gpu_uuids=uuids,
                tp=int(e.get("tp", 1)), pp=int(e.get("pp", 1)), ep=int(e.get("ep", 1)), dp=int(e.get("dp", 1)),
                service_name="vllm" if kind == "vllm" else "sglang",
                process_id=str(1000 + 17 * len(engines)) if kind == "vllm" else "",
                vllm_metrics=e.get("vllm_metrics", "v0.33"), eplb=bool(e.get("eplb", False)),
            ))
        for k, r in enumerate(tpl.get("reservations", [])):
            a, b = r.get("period", [0.0, 1.0])
            vf = t0 - LONG_BEFORE if a <= 0 else t0 + duration * a
            vt = t0 + duration + LONG_AFTER if b >= 1 else t0 + duration * b
            pm = r["pricing_model"]
            reservations.append(Reservation(
                reservation_id=f"res-{name}-{k}-{pm}", provider=provider, pricing_model=pm,
                gpu_model=spec.nvml_name, cluster=cluster, nodes=[name],
                gpu_uuids=[gpus[j].uuid for j in r["gpus"]],
                usd_per_gpu_hour=float(r.get("usd_per_gpu_hour", spec.list_usd_per_gpu_hour[pm])),
                owner_team=r.get("owner_team", ""),
                valid_from=vf.replace(microsecond=0), valid_to=vt.replace(microsecond=0),
            ))
    workflows = [Workflow(**w) for w in doc.get("workflow", [])]
    faults = [Fault(**f) for f in doc.get("fault", []) if f["node"] in {n.name for n in node_list}]
    return Fleet(cluster, t0, hrs, sd, node_list, engines, reservations, workflows, faults, opts)


def _from_concrete(doc: dict[str, Any]) -> Fleet:
    c = doc["collect"]
    sim = c.get("simulated_fleet")
    if sim is None:
        raise FleetError("this [collect] config has no [collect.simulated_fleet]: not a simulated fleet")
    extras = sim.get("engine_options", {})
    nodes = [Node(n["name"], n["gpu_model"], [Gpu(u, k, n["name"], n["gpu_model"]) for k, u in enumerate(n["gpu_uuids"])])
             for n in sim["nodes"]]
    hf_to_key = {m.hf_name: k for k, m in MODELS.items()}
    engines = []
    for e in c.get("engines", []):
        x = extras.get(e["instance"], {})
        engines.append(Engine(
            instance=e["instance"], engine_kind=e["engine_kind"], model=x.get("model_key", hf_to_key.get(e["model"], e["model"])),
            node=e["node"], gpu_uuids=list(e["gpu_uuids"]), tp=e.get("tp", 1), pp=e.get("pp", 1), ep=e.get("ep", 1),
            dp=e.get("dp", 1), service_name=e.get("service_name", ""), process_id=e.get("process_id", ""),
            vllm_metrics=x.get("vllm_metrics", "v0.33"), eplb=x.get("eplb", False),
            expert_dump_dir=e.get("expert_dump_dir", ""), eplb_log_file=e.get("eplb_log_file", ""),
        ))
    reservations = [Reservation(**{**r, "valid_from": parse_time(r["valid_from"]), "valid_to": parse_time(r["valid_to"])})
                    for r in sim.get("reservations", [])]
    return Fleet(
        cluster=c.get("cluster", "default"), start=parse_time(sim["start"]), hours=float(sim["hours"]),
        seed=int(sim["seed"]), nodes=nodes, engines=engines, reservations=reservations,
        workflows=[Workflow(**w) for w in sim.get("workflows", [])],
        faults=[Fault(**f) for f in sim.get("faults", [])], options=dict(sim.get("options", {})),
    )


def fleet_to_toml(fleet: Fleet) -> str:
    """The concrete fleet file: a sidecar config (``[collect]``) that also describes the whole fleet."""
    sim = {
        "start": iso(fleet.start), "hours": fleet.hours, "seed": fleet.seed, "options": dict(fleet.options),
        "engine_options": {e.instance: {"model_key": e.model, "vllm_metrics": e.vllm_metrics, "eplb": e.eplb}
                           for e in fleet.engines},
        "nodes": [{"name": n.name, "gpu_model": n.gpu_model, "gpu_uuids": [g.uuid for g in n.gpus]} for n in fleet.nodes],
        "reservations": [{**asdict(r), "valid_from": iso(r.valid_from), "valid_to": iso(r.valid_to)}
                         for r in fleet.reservations],
        "workflows": [asdict(w) for w in fleet.workflows],
        "faults": [asdict(f) for f in fleet.faults],
    }
    header = ("# fleetledger simulated fleet. Valid as a sidecar config (fleetledger collect --config); the\n"
              "# simulator reads the whole description back from [collect.simulated_fleet].\n")
    collect = {"cluster": fleet.cluster, "simulated_fleet": sim, "engines": [e.sidecar_entry() for e in fleet.engines]}
    return header + toml_writer.dumps({"collect": collect})
