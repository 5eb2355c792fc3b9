"""Metric backends: where the adapter's numbers come from (Prometheus, or the exporters directly)."""
