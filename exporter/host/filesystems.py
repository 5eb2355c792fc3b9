"""Which mounts get ``node_filesystem_*`` series, and where to stat them, as node_exporter decides."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

from exporter.host.procfs import Mount

# node_exporter 1.10's defaults for --collector.filesystem.mount-points-exclude and fs-types-exclude
# (Debian's package widens the mount-point one to /run, /mnt and /media; upstream's is what clusters run).
MOUNT_POINTS_EXCLUDE = re.compile(
    r"^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)"
)
FS_TYPES_EXCLUDE = re.compile(
    r"^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs"
    r"|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|erofs|sysfs|tracefs)$"
)


@dataclass(frozen=True)
class Filesystem:
    """A mount to report: its labels as the host sees them and the path to stat from here."""

    device: str
    mountpoint: str
    fstype: str
    readonly: bool
    stat_path: str

    @property
    def labels(self) -> tuple[str, str, str]:
        return (self.device, self.fstype, self.mountpoint)


def strip_rootfs(path: str, rootfs: str) -> str:
    """``path`` as the host names it when the host's root is mounted at ``rootfs`` here."""
    root = rootfs.rstrip("/")
    if not root:
        return path
    if path == root:
        return "/"
    if path.startswith(root + "/"):
        return path[len(root) :]
    return path


def select_filesystems(mounts: Iterable[Mount], rootfs: str) -> list[Filesystem]:
    """Mounts left after the default exclusions, one per label set (the first in table order).

    A mount point can be mounted over, or bind-mounted with different options; node_exporter reports
    one series per label set, and duplicates would make the exposition invalid.
    """
    selected: dict[tuple[str, str, str], Filesystem] = {}
    for mount in mounts:
        mountpoint = strip_rootfs(mount.mountpoint, rootfs)
        if MOUNT_POINTS_EXCLUDE.search(mountpoint) or FS_TYPES_EXCLUDE.search(mount.fstype):
            continue
        filesystem = Filesystem(
            device=mount.device,
            mountpoint=mountpoint,
            fstype=mount.fstype,
            readonly="ro" in mount.options,
            stat_path=os.path.join(rootfs, mountpoint.lstrip("/")),
        )
        selected.setdefault(filesystem.labels, filesystem)
    return list(selected.values())
