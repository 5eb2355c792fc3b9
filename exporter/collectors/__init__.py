"""Prometheus custom collectors, one per concern; each builds its series afresh on every scrape."""
