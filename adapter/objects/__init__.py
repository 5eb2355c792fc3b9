"""Kubernetes objects the adapter selects by name or label selector (cached list/watch)."""
