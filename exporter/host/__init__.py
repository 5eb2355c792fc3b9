"""Host statistics from procfs and psutil, shaped the way node_exporter exposes them."""
