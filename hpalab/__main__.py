"""``python -m hpalab``: the ``kube-gpu-hpa`` command."""

import sys

from hpalab.cli import main

sys.exit(main())
