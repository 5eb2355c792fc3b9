"""The real exporter command line over a scripted fake NVML whose state a test changes while it runs.

``KGM_TEST_NVML_CONTROL=CONTROL.json python -m tests.fakes.nvml_launcher [kube-gpu-exporter flags]``
installs ``tests.fakes.fake_pynvml`` as ``pynvml`` and runs ``exporter.cli.main``. ``CONTROL.json``
holds the fake's state and is re-read whenever it changes, so a test scripts faults on the running process::

    {"init_error": 9,                                  # NVML_ERROR_* nvmlInit raises, or null
     "driver": "unloaded",                             # every call fails until NVML is initialised again
     "gpus": [{"uuid": "GPU-a", "lost": false,          # any FakeGpu field, by name
               "errors": {"nvmlDeviceGetPowerUsage": 3}}]}

Each version is the whole state: fields it leaves out take FakeGpu's defaults. GPUs are matched by
UUID; a GPU missing from a later version is gone from the node. Write the file atomically (rename).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

import pynvml

from tests.fakes.fake_pynvml import FakeGpu, FakeNvml

POLL_SECONDS = 0.05


def apply(fake: FakeNvml, state: dict[str, Any]) -> None:
    """Make ``fake`` what ``state`` describes, keeping each GPU's object (and so its handle)."""
    known = {gpu.uuid: gpu for gpu in fake.gpus}
    gpus = []
    for spec in state.get("gpus", []):
        fresh = FakeGpu(uuid=spec["uuid"])
        gpu = known.get(fresh.uuid, fresh)
        for item in dataclasses.fields(FakeGpu):
            setattr(gpu, item.name, spec.get(item.name, getattr(fresh, item.name)))
        gpus.append(gpu)
    fake.gpus = gpus
    fake.init_error = state.get("init_error")
    if state.get("driver") == "unloaded":
        # Every call fails until the library is initialised again, and that fails while unloaded.
        fake.initialised = 0
        if fake.init_error is None:
            fake.init_error = pynvml.NVML_ERROR_DRIVER_NOT_LOADED


def _version(control: Path) -> tuple[int, int]:
    found = control.stat()
    return found.st_ino, found.st_mtime_ns


def follow(fake: FakeNvml, control: Path, stop: threading.Event) -> None:
    seen = _version(control)
    while not stop.wait(POLL_SECONDS):
        try:
            changed = _version(control)
            if changed != seen:
                apply(fake, json.loads(control.read_text()))
                seen = changed
        except (OSError, ValueError):
            continue  # caught mid-write: the next poll reads the whole file


def main(argv: list[str]) -> int:
    control = Path(os.environ["KGM_TEST_NVML_CONTROL"])
    fake = FakeNvml([])
    apply(fake, json.loads(control.read_text()))
    sys.modules["pynvml"] = fake.module()
    stop = threading.Event()
    threading.Thread(target=follow, args=(fake, control, stop), name="nvml-control", daemon=True).start()
    from exporter.cli import main as exporter_main  # noqa: PLC0415 - after pynvml is replaced

    try:
        return exporter_main(argv)
    finally:
        stop.set()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
