"""A Docker daemon for the image tests, a base image made without any registry, and the build."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import IN_CI, require_program

CACHE = Path(os.environ.get("KGM_CACHE", Path.home() / ".cache" / "kube-gpu-metrics"))
# Debian's docker.io CLI builds with its built-in BuildKit (needed for --secret); a newer standalone
# CLI elsewhere on PATH would need the buildx plugin for the same command.
DEBIAN_DOCKER_CLI = Path("/usr/bin/docker")
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
BASE_SUITE = "bookworm"


def unavailable(reason: str) -> None:
    """Docker was proven to work on the CI machines, so there a missing piece is a failure."""
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


@dataclass
class Docker:
    """The docker CLI bound to one daemon socket."""

    cli: str
    host: str

    def __call__(
        self, *args: str, timeout: float = 120, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.cli, "--host", self.host, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, **(env or {})},
        )
        if check and result.returncode != 0:
            pytest.fail(f"docker {' '.join(args)} exited {result.returncode}:\n{result.stderr[-4000:]}")
        return result

    def answers(self) -> bool:
        return self("info", "--format", "{{.ServerVersion}}", check=False, timeout=20).returncode == 0


def docker_cli() -> str:
    if DEBIAN_DOCKER_CLI.exists():
        return str(DEBIAN_DOCKER_CLI)
    return require_program("docker")


def start_daemon(run_dir: Path) -> tuple[Docker, subprocess.Popen[bytes] | None]:
    """A daemon that answers: the machine's own if one runs, else one started here (stop it after)."""
    docker = Docker(docker_cli(), "unix:///var/run/docker.sock")
    if docker.answers():
        return docker, None
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        unavailable("dockerd is not installed; scripts/setup --test installs docker.io")
    if os.geteuid() != 0:
        unavailable("starting dockerd needs root")
    run_dir.mkdir(parents=True, exist_ok=True)
    log = run_dir / "dockerd.log"
    docker = Docker(docker.cli, f"unix://{run_dir}/docker.sock")
    # The default data root keeps imported base images and build layers between runs.
    process = subprocess.Popen(
        [
            str(dockerd),
            "--host",
            docker.host,
            "--pidfile",
            str(run_dir / "dockerd.pid"),
            "--exec-root",
            str(run_dir / "exec"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            unavailable(f"dockerd exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        if docker.answers():
            return docker, process
        time.sleep(0.5)
    process.terminate()
    process.wait(timeout=30)
    unavailable(f"dockerd did not answer within 60 s:\n{log.read_text()[-4000:]}")
    raise AssertionError("unreachable")


def stop_daemon(process: subprocess.Popen[bytes], run_dir: Path) -> None:
    """Stop a daemon ``start_daemon`` started, and undo the mounts it leaves under its exec root.

    dockerd keeps its default network namespace bind-mounted under ``exec/netns`` after it exits;
    left there, the mount pins the directory and pytest cannot remove its temporary tree.
    """
    process.terminate()
    process.wait(timeout=60)
    mounts = Path("/proc/self/mounts").read_text().splitlines()
    for mount_point in sorted((line.split()[1] for line in mounts), reverse=True):
        if mount_point.startswith(f"{run_dir}/"):
            subprocess.run(["umount", "--lazy", mount_point], capture_output=True, timeout=30, check=False)


def base_image(docker: Docker) -> str:
    """A minimal Debian with Python, bootstrapped with mmdebstrap (registries are unreachable here).

    The root filesystem tarball is cached under ~/.cache/kube-gpu-metrics, keyed by what it holds.
    """
    key = hashlib.sha256(" ".join((BASE_SUITE, *BASE_PACKAGES)).encode()).hexdigest()[:12]
    tag = f"kgm-local/python:{BASE_SUITE}-{key}"
    if docker("image", "inspect", tag, check=False).returncode == 0:
        return tag
    tarball = CACHE / "base-image" / f"{BASE_SUITE}-minbase-{key}.tar"
    if not tarball.exists():
        mmdebstrap = require_program("mmdebstrap")
        tarball.parent.mkdir(parents=True, exist_ok=True)
        # mmdebstrap picks its output format from the name's extension.
        partial = tarball.with_name(f"{tarball.stem}.partial.tar")
        result = subprocess.run(
            [
                mmdebstrap,
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                BASE_SUITE,
                str(partial),
            ],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if result.returncode != 0:
            pytest.fail(f"mmdebstrap exited {result.returncode}:\n{result.stderr[-4000:]}")
        partial.rename(tarball)
    docker("import", str(tarball), tag, timeout=300)
    return tag


def build_image(docker: Docker, repo: Path, base: str, tag: str) -> None:
    """``docker build`` of the project's Dockerfile on ``base``; pip may need this host's CA bundle."""
    args = ["build", "--network", "host", "--build-arg", f"BASE_IMAGE={base}", "-t", tag]
    ca_bundle = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE")
    if ca_bundle and Path(ca_bundle).is_file():
        args += ["--secret", f"id=pip-ca,src={ca_bundle}"]
    docker(*args, str(repo), timeout=900, env={"DOCKER_BUILDKIT": "1"})
