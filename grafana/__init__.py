"""Grafana dashboards for kube-gpu-metrics: built from code, committed as JSON, previewed with matplotlib."""
