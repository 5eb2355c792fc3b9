"""kube-gpu-exporter: GPU, host and pod-attribution metrics for one Kubernetes node."""

__version__ = "0.1.0"
