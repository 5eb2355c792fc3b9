"""A minute of steady load on a real exporter and adapter (``bench/soak.py``, which runs ten): no failed
request, memory flat after the warm-up, descriptors constant."""

from __future__ import annotations

import pytest

from bench.soak import soak

SECONDS = 60
WARMUP = 20
RSS_GROWTH_MIB = 10.0
FD_DRIFT = 2


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_minute_of_load_is_flat() -> None:
    reports = soak(SECONDS, warmup=WARMUP, rate=20, sample_every=2)
    for name, report in reports.items():
        summary = report.summary(WARMUP)
        assert not report.errors, (name, summary)
        assert report.requests >= SECONDS * 20 * 0.9, (name, summary)
        assert report.rss_growth_mib(WARMUP) < RSS_GROWTH_MIB, (name, summary)
        low, high = report.fd_range(WARMUP)
        assert high - low <= FD_DRIFT, (name, summary)
