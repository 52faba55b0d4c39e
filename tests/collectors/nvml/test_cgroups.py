"""PID -> container/pod from real-format /proc/<pid>/cgroup files (cgroup v1 and v2)."""

from __future__ import annotations

import pytest

from collectors.nvml.cgroups import identify, parse_cgroup

CID = "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899"
UID = "6f1c8a3e-3c1b-4f2a-9d8e-0a1b2c3d4e5f"

V1_DOCKER = f"""12:pids:/docker/{CID}
11:hugetlb:/docker/{CID}
10:memory:/docker/{CID}
4:cpu,cpuacct:/docker/{CID}
1:name=systemd:/docker/{CID}
0::/system.slice/containerd.service
"""
V1_KUBEPODS_CGROUPFS = f"""12:devices:/kubepods/burstable/pod{UID}/{CID}
11:memory:/kubepods/burstable/pod{UID}/{CID}
1:name=systemd:/kubepods/burstable/pod{UID}/{CID}
"""
V1_KUBEPODS_SYSTEMD_CRIO = f"""11:memory:/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID.replace('-', '_')}.slice/crio-{CID}.scope
1:name=systemd:/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID.replace('-', '_')}.slice/crio-{CID}.scope
"""
V2_CONTAINERD = f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID.replace('-', '_')}.slice/cri-containerd-{CID}.scope\n"
V2_GUARANTEED_DOCKER = f"0::/kubepods.slice/kubepods-pod{UID.replace('-', '_')}.slice/docker-{CID}.scope\n"
V2_PLAIN_DOCKER = f"0::/system.slice/docker-{CID}.scope\n"
V2_PODMAN = f"0::/machine.slice/libpod-{CID}.scope/container\n"
V2_HOST = "0::/user.slice/user-1000.slice/session-3.scope\n"


@pytest.mark.parametrize(("text", "runtime", "pod_uid"), [
    (V1_DOCKER, "docker", ""),
    (V1_KUBEPODS_CGROUPFS, "kubernetes", UID),
    (V1_KUBEPODS_SYSTEMD_CRIO, "cri-o", UID),
    (V2_CONTAINERD, "containerd", UID),
    (V2_GUARANTEED_DOCKER, "docker", UID),
    (V2_PLAIN_DOCKER, "docker", ""),
])
def test_container_and_pod_uid(text, runtime, pod_uid):
    ident = parse_cgroup(text)
    assert (ident.container_id, ident.runtime, ident.pod_uid) == (CID, runtime, pod_uid)


def test_podman_scope_with_nested_group():
    # podman's inner "container" cgroup sits below the libpod scope: the scope is not the last element
    ident = parse_cgroup(V2_PODMAN)
    assert (ident.container_id, ident.runtime, ident.pod_uid) == (CID, "podman", "")


def test_host_process_has_no_container():
    ident = parse_cgroup(V2_HOST)
    assert (ident.container_id, ident.pod_uid) == ("", "")


def test_garbage_does_not_raise():
    assert parse_cgroup("not a cgroup file\n\x00\x01::::").container_id == ""


def test_identify_reads_downward_api_env_first(tmp_path):
    d = tmp_path / "77"
    d.mkdir()
    (d / "cgroup").write_text(V2_CONTAINERD)
    (d / "environ").write_bytes(b"HOSTNAME=pod-x\0POD_NAME=sglang-0\0POD_NAMESPACE=llm\0CONTAINER_NAME=engine\0")
    ident = identify(tmp_path, 77)
    assert (ident.pod, ident.namespace, ident.container, ident.container_id) == ("sglang-0", "llm", "engine", CID)


def test_identify_missing_pid(tmp_path):
    assert identify(tmp_path, 12345).container_id == ""
