"""Every CPU benchmark in turn, as committed in docs/benchmarks.md: ``python -m bench`` (or scripts/bench).

    .venv/bin/python -m bench [--only exporter,host,adapter] [--quick]

``--quick`` runs each with fewer scrapes, sizes and seconds: a check that they work, not figures.
The GPU benchmark (``bench.gpu_nvml``) needs a GPU and runs apart.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from bench.common import REPO

FULL = {
    "exporter": ["bench.exporter_scrape"],
    "host": ["bench.host_vs_node_exporter"],
    "adapter": ["bench.adapter_load"],
}
QUICK = {
    "exporter": ["--scrapes", "100", "--gpus", "1,16", "--pods", "0,200", "--rss-scrapes", "300"],
    "host": ["--scrapes", "100", "--rounds", "2"],
    "adapter": ["--pods", "10,100", "--duration", "2", "--direct-fill", "10"],
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default=",".join(FULL), help="which of: " + ", ".join(FULL))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    for name in args.only.split(","):
        if name not in FULL:
            parser.error(f"unknown benchmark {name!r}")
        command = [sys.executable, "-m", *FULL[name], *(QUICK[name] if args.quick else [])]
        print(f"== {name}: {' '.join(command[1:])}", flush=True)
        subprocess.run(command, cwd=REPO, check=True)


if __name__ == "__main__":
    main()
