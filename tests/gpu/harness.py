"""What the real-GPU checks share: load processes on the GPU, nvidia-smi's answers, and whether NVML works.

Only the standard library at import: the load processes run this file as a script, and only they
need PyTorch.
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import time
from collections.abc import Sequence


def nvml_works() -> bool:
    """Whether NVML initialises here (a driver, a GPU and nvidia-ml-py)."""
    try:
        import pynvml  # noqa: PLC0415 - optional dependency, probed at collection

        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - any failure means "no usable GPU here"
        return False
    return True


# -- load ----------------------------------------------------------------------------------------


def worker(kind: str, seconds: float, gib: int) -> None:
    """Runs in a load process: hold ``gib`` GiB, and with ``matmul`` keep the SMs busy too."""
    torch = importlib.import_module("torch")

    deadline = time.monotonic() + seconds
    held = torch.ones(gib * 1024**3, dtype=torch.uint8, device="cuda")
    torch.cuda.synchronize()
    if kind == "matmul":
        a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
        b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
        torch.cuda.synchronize()
        print("ready", flush=True)
        while time.monotonic() < deadline:
            for _ in range(20):
                a @ b
            torch.cuda.synchronize()
    else:
        print("ready", flush=True)
        time.sleep(max(0.0, deadline - time.monotonic()))
    del held


def start_load(loads: Sequence[tuple[str, int]], seconds: float) -> list[subprocess.Popen[str]]:
    """One load process per ``(kind, GiB held)``, each running ``worker`` for ``seconds``; returns once
    every one has its memory and has started its work."""
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, kind, "--gib", str(gib), "--seconds", str(seconds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for kind, gib in loads
    ]
    for proc in procs:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if line != "ready":
            stop_load(procs)
            raise RuntimeError(f"load process {proc.pid} did not start: {line!r}")
    return procs


def stop_load(procs: Sequence[subprocess.Popen[str]]) -> None:
    for proc in procs:
        proc.kill()
    for proc in procs:
        proc.wait()


# -- nvidia-smi ----------------------------------------------------------------------------------


def smi(*args: str) -> list[list[str]]:
    """``nvidia-smi args`` in CSV, as rows of stripped cells."""
    out = subprocess.run(["nvidia-smi", *args], check=True, capture_output=True, text=True, timeout=30).stdout
    return [[c.strip() for c in line.split(",")] for line in out.strip().splitlines() if line.strip()]


def smi_apps(index: str) -> dict[int, float]:
    """MiB used per process on GPU ``index``, as nvidia-smi lists them."""
    rows = smi("--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits", "-i", index)
    return {int(pid): float(used) for pid, used in rows}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="One load process on GPU 0 (see start_load).")
    parser.add_argument("kind", choices=("matmul", "hold"))
    parser.add_argument("--gib", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    args = parser.parse_args()
    worker(args.kind, args.seconds, args.gib)
