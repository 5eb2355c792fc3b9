"""Which pod and container a process belongs to, read from the text of ``/proc/<pid>/cgroup``.

The kubelet puts every container in a cgroup below its pod's cgroup. The names differ by cgroup
driver and runtime, but the pod segment and the container segment below it always look like one
of these (v1 and v2 alike):

- cgroupfs driver: ``.../pod<uid>/<container id>`` (containerd, Docker) or ``.../pod<uid>/crio-<id>``
- systemd driver: ``.../kubepods-<qos>-pod<uid with _ for ->.slice/<runtime>-<id>.scope`` with
  ``cri-containerd-``, ``crio-`` or ``docker-`` as the runtime prefix.

The path is matched segment by segment anywhere in the line, never from its start: inside a
private cgroup namespace the kernel prints the path relative to the reader's own cgroup
(``0::/../../kubepods-...``), and nested setups (kind, k3s) add slices above ``kubepods``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UID = r"[0-9a-fA-F]{8}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{12}"
# Static pods' UIDs are the hash of their manifest: 32 hex digits without dashes.
_CONFIG_HASH = r"[0-9a-fA-F]{32}"
_POD_SEGMENT = re.compile(rf"(?:[\w.-]*-)?pod({_UID}|{_CONFIG_HASH})(?:\.slice)?")
# crio-conmon-<id>.scope holds CRI-O's monitor process, not the container, so it does not match.
_CONTAINER_SEGMENT = re.compile(r"(?:(?:cri-containerd|crio|docker)-)?([0-9a-fA-F]{64})(?:\.scope)?")


@dataclass(frozen=True)
class ContainerCgroup:
    """A process's place in Kubernetes: the pod UID (dashed form) and the runtime's container ID."""

    pod_uid: str
    container_id: str


def parse_cgroup_path(path: str) -> ContainerCgroup | None:
    """The pod and container of one cgroup path, or None when the path is not inside a container."""
    segments = path.split("/")
    for position, segment in enumerate(segments):
        pod = _POD_SEGMENT.fullmatch(segment)
        if pod is None:
            continue
        for below in segments[position + 1 :]:
            container = _CONTAINER_SEGMENT.fullmatch(below)
            if container is not None:
                return ContainerCgroup(pod.group(1).replace("_", "-").lower(), container.group(1).lower())
    return None


def parse_proc_cgroup(text: str) -> ContainerCgroup | None:
    """The pod and container of a process from its ``/proc/<pid>/cgroup`` text (v1, v2 or hybrid).

    Each line is ``hierarchy-id:controllers:path``. The kubelet places a container in the same
    pod/container cgroup in every hierarchy, so the first line that names one answers.
    """
    for line in text.splitlines():
        _, sep, rest = line.partition(":")
        _, sep2, path = rest.partition(":")
        if not (sep and sep2):
            continue
        found = parse_cgroup_path(path.strip())
        if found is not None:
            return found
    return None
