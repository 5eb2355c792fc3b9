"""The direct backend's compact sample window against a plain model of its documented rules."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from adapter.backends.exposition import Sample
from adapter.backends.window import SeriesKey, SeriesWindow, WindowedSeries, interned

WINDOW = 10.0


@dataclass
class ReferenceWindow:
    """The rules of ``SeriesWindow`` written plainly: a list of (timestamp, value) per series."""

    window: float
    series: dict[SeriesKey, list[tuple[float, float]]] = field(default_factory=dict)

    def record(self, timestamp: float, samples: list[Sample]) -> None:
        scraped: dict[SeriesKey, float] = {}
        for sample in samples:
            if not math.isnan(sample.value) and (sample.name, sample.labels) not in scraped:
                scraped[(sample.name, sample.labels)] = sample.value
        self.series = {key: points for key, points in self.series.items() if key in scraped}
        for key, value in scraped.items():
            self.series.setdefault(key, []).append((timestamp, value))
        self.prune(timestamp)

    def prune(self, now: float) -> None:
        horizon = now - self.window
        kept = {key: [p for p in points if p[0] >= horizon] for key, points in self.series.items()}
        self.series = {key: points for key, points in kept.items() if points}

    def fresh_and_oldest(self, now: float) -> tuple[list[WindowedSeries], float]:
        result = []
        oldest = math.inf
        for (name, labels), points in self.series.items():
            within = [(timestamp, value) for timestamp, value in points if timestamp >= now - self.window]
            if within:
                oldest = min(oldest, within[0][0])
                mean = sum(value for _, value in within) / len(within)
                result.append(WindowedSeries(name, labels, mean, points[-1][0]))
        return result, oldest


KEYS = [
    ("gpu_utilization_ratio", (("gpu", "0"), ("uuid", "GPU-0"))),
    ("gpu_utilization_ratio", (("gpu", "1"), ("uuid", "GPU-1"))),
    ("gpu_memory_used_bytes", (("gpu", "0"), ("uuid", "GPU-0"))),
    ("gpu_info", (("gpu", "0"), ("parent_uuid", ""), ("uuid", "GPU-0"))),
    ("kgm_build_info", ()),
]
values = st.floats(allow_nan=False, allow_infinity=False) | st.just(math.nan)
scrapes = st.lists(st.tuples(st.sampled_from(range(len(KEYS))), values), max_size=8)
# A step: time passes, then a successful scrape (its samples), a failed one (None) or only a read.
steps = st.tuples(
    st.floats(0, 2 * WINDOW, allow_nan=False),
    st.one_of(scrapes, st.none(), st.just("read")),
    st.floats(0, WINDOW, allow_nan=False),
)


def copies(index: int) -> SeriesKey:
    """A key equal to ``KEYS[index]`` made of new objects, as each scrape's parse makes them."""
    name, labels = KEYS[index]
    return "".join(list(name)), tuple((str(n), "".join(list(v))) for n, v in labels)


@settings(max_examples=400)
@given(st.lists(steps, max_size=30))
def test_window_answers_as_the_plain_model(script: list[tuple[float, object, float]]) -> None:
    window, reference = SeriesWindow(WINDOW), ReferenceWindow(WINDOW)
    now = 1000.0
    for elapsed, action, later in script:
        now += elapsed
        if action is None:
            window.prune(now)
            reference.prune(now)
        elif isinstance(action, list):
            samples = [Sample(*copies(index), value) for index, value in action]
            window.record(now, samples)
            reference.record(now, samples)
        answer = window.fresh_and_oldest(now)
        assert answer == reference.fresh_and_oldest(now)
        # The contract direct.py caches views by: unchanged while the oldest sample used stays fresh.
        if window.is_fresh(answer[1], now + later):
            assert window.fresh_and_oldest(now + later)[0] == answer[0]


def test_a_series_given_twice_in_a_scrape_keeps_its_first_sample() -> None:
    window = SeriesWindow(60)
    window.record(0, [Sample("m", (), 1.0), Sample("m", (), 5.0), Sample("m", (), math.nan)])
    assert window.fresh(0) == [WindowedSeries("m", (), 1.0, 0)]


def test_a_failed_scrape_keeps_samples_until_they_age_out() -> None:
    window = SeriesWindow(10)
    window.record(0, [Sample("m", (), 1.0)])
    window.record(5, [Sample("m", (), 3.0), Sample("n", (), 7.0)])
    window.prune(12)
    assert window.fresh_and_oldest(12) == (
        [WindowedSeries("m", (), 3.0, 5), WindowedSeries("n", (), 7.0, 5)],
        5,
    )
    window.prune(15.5)
    assert window.fresh_and_oldest(15.5) == ([], math.inf)


def test_series_of_a_target_share_their_labels() -> None:
    window = SeriesWindow(60)
    for timestamp in (0, 5):
        window.record(timestamp, [Sample(*copies(index), 1.0) for index in range(len(KEYS))])
    series = window.fresh(5)
    assert [(s.name, s.labels) for s in series] == KEYS
    utilization, _, memory, info, _ = series
    # Equal label sets are one object, so are equal label pairs across label sets.
    assert utilization.labels is memory.labels
    assert info.labels[2] is utilization.labels[1]


def test_interned_keys_reuse_known_objects() -> None:
    known = [copies(0)]
    [key] = interned(known, [copies(2)])
    assert key == KEYS[2]
    assert key[1] is known[0][1]
