"""Small helpers shared by the exporter and the adapter (flags, logging, addresses)."""
