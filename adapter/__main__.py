"""``python -m adapter``: the same as ``kube-gpu-adapter``."""

import sys

from adapter.cli import main

sys.exit(main())
