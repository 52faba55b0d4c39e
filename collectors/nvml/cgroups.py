"""PID -> container / pod, read from ``<proc_root>/<pid>/cgroup`` (cgroup v1 and v2).

NVML reports host PIDs (the sidecar runs with ``hostPID: true`` in Kubernetes, or on the host
under systemd). A PID's cgroup path names its container runtime scope and, under Kubernetes,
its pod UID. Shapes handled (all as written by the kernel, one ``id:controllers:path`` line each):

- Docker, cgroup v1: ``12:memory:/docker/<64 hex>``; v2 / systemd driver:
  ``0::/system.slice/docker-<64 hex>.scope``
- Kubernetes, cgroupfs driver (v1): ``11:cpu,cpuacct:/kubepods/burstable/pod<uid>/<64 hex>``
- Kubernetes, systemd driver (v1 or v2) with containerd / CRI-O / Docker:
  ``0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_with_underscores>.slice/cri-containerd-<64 hex>.scope``
  (``crio-<id>.scope``, ``docker-<id>.scope``); Guaranteed pods sit right under ``kubepods.slice``.
- Podman: ``libpod-<64 hex>.scope``.

A cgroup path carries the pod UID, not the pod's name or namespace. Those come from the process
itself when readable: the downward-API variables ``POD_NAME`` / ``POD_NAMESPACE`` in
``<proc_root>/<pid>/environ``, else ``HOSTNAME`` (a pod's hostname is its name) and the service
account namespace file under ``<proc_root>/<pid>/root``. What cannot be read stays ''.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_HEX64 = r"[0-9a-f]{64}"
_CONTAINER_RES = [
    (re.compile(rf"(?:^|/)docker-({_HEX64})\.scope(?:/|$)"), "docker"),
    (re.compile(rf"(?:^|/)cri-containerd-({_HEX64})\.scope(?:/|$)"), "containerd"),
    (re.compile(rf"(?:^|/)crio-({_HEX64})\.scope(?:/|$)"), "cri-o"),
    (re.compile(rf"(?:^|/)libpod-({_HEX64})\.scope(?:/|$)"), "podman"),
    (re.compile(rf"^/docker/({_HEX64})$"), "docker"),
    (re.compile(rf"/pod[0-9a-f_\-]{{36}}/({_HEX64})$"), "kubernetes"),
    (re.compile(rf"^/({_HEX64})$"), "unknown"),
]
_POD_UID_RE = re.compile(r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})")
_SA_NAMESPACE = "root/var/run/secrets/kubernetes.io/serviceaccount/namespace"


@dataclass(frozen=True)
class ProcessIdentity:
    container_id: str = ""
    runtime: str = ""  # 'docker' | 'containerd' | 'cri-o' | 'podman' | 'kubernetes' | ''
    pod_uid: str = ""
    pod: str = ""
    namespace: str = ""
    container: str = ""


NO_IDENTITY = ProcessIdentity()


def parse_cgroup(text: str) -> ProcessIdentity:
    """Container id, runtime and pod UID from the text of a ``/proc/<pid>/cgroup`` file."""
    container_id = runtime = pod_uid = ""
    for line in text.splitlines():
        parts = line.strip().split(":", 2)
        if len(parts) != 3:
            continue
        path = parts[2].rstrip("/")
        if not path or path == "/":
            continue
        if not pod_uid and (m := _POD_UID_RE.search(path)):
            pod_uid = m.group(1).replace("_", "-")
        if not container_id:
            for regex, kind in _CONTAINER_RES:
                if m := regex.search(path):
                    container_id, runtime = m.group(1), kind
                    break
        if container_id and pod_uid:
            break
    return ProcessIdentity(container_id=container_id, runtime=runtime, pod_uid=pod_uid)


def _environ(proc_root: Path, pid: int) -> dict[str, str]:
    try:
        raw = (proc_root / str(pid) / "environ").read_bytes()
    except OSError:
        return {}
    env = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep and key in (b"POD_NAME", b"POD_NAMESPACE", b"HOSTNAME", b"CONTAINER_NAME"):
            env[key.decode(errors="replace")] = value.decode(errors="replace")
    return env


def identify(proc_root: Path, pid: int) -> ProcessIdentity:
    """Who ``pid`` is: its container and, under Kubernetes, its pod. Never raises."""
    try:
        text = (proc_root / str(pid) / "cgroup").read_text(errors="replace")
    except OSError:
        return NO_IDENTITY  # the process ended, or /proc is not the host's
    ident = parse_cgroup(text)
    if not ident.pod_uid:
        return ident
    env = _environ(proc_root, pid)
    namespace = env.get("POD_NAMESPACE", "")
    if not namespace:
        try:
            namespace = (proc_root / str(pid) / _SA_NAMESPACE).read_text().strip()
        except OSError:
            namespace = ""
    return ProcessIdentity(
        container_id=ident.container_id,
        runtime=ident.runtime,
        pod_uid=ident.pod_uid,
        pod=env.get("POD_NAME") or env.get("HOSTNAME", ""),
        namespace=namespace,
        container=env.get("CONTAINER_NAME", ""),
    )


def process_name(proc_root: Path, pid: int) -> str:
    try:
        return (proc_root / str(pid) / "comm").read_text().strip()
    except OSError:
        return ""
