"""kube-gpu-adapter: a custom.metrics.k8s.io aggregated API server for GPU metrics."""

__version__ = "0.1.0"
