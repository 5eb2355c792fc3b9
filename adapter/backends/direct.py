"""The ``direct`` backend: scrapes the exporters itself and computes the default GPU metrics in memory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urlsplit

import aiohttp

from adapter.backends.attribution import (
    METRICS,
    SERIES_NAMES,
    DeviceUse,
    Value,
    device_metric,
    device_use,
    group_metric,
)
from adapter.backends.base import BackendUnavailable, MetricDescriptor, MetricSample, ObjectKey, UnknownMetric
from adapter.backends.discovery import DiscoveryError, Target, TargetDiscovery
from adapter.backends.exposition import Sample, parse_exposition
from adapter.backends.window import SeriesWindow
from adapter.selectors import Selector

log = logging.getLogger(__name__)

# Series whose ``node`` label names the exporter's node (``--node-name``): the exporter labels gpu_info.
NODE_SOURCES = frozenset({"gpu_info", "kgm_build_info"})
WANTED_SERIES = SERIES_NAMES | NODE_SOURCES
OBJECT_RESOURCES = frozenset({"pods", "nodes", "namespaces"})
# Bodies up to this many characters are parsed on the event loop, larger ones in a thread. An exporter
# of 8 GPUs answers about 27 KiB, parsed in about 0.3 ms: inline, that is less than a hand-off to a
# thread costs, and without threads reads are not kept waiting for the GIL and glibc opens no malloc
# arena per thread (each keeping its freed memory in RSS). At the limit parsing takes about 2 ms; a
# larger body would keep every read waiting on the loop for longer, so it goes to a thread.
INLINE_PARSE_LIMIT = 128 * 1024
_ACCEPT = "text/plain;version=0.0.4;q=1.0, */*;q=0.1"
_Key = TypeVar("_Key")


@dataclass(frozen=True)
class TargetStatus:
    """The latest scrape of one exporter."""

    url: str
    node: str
    up: bool
    last_scrape: float | None
    last_success: float | None
    duration_seconds: float
    error: str
    series: int


@dataclass(frozen=True)
class BackendStats:
    """The backend's own health, for ``/readyz`` details and logs."""

    targets: tuple[TargetStatus, ...]
    rounds: int
    last_round_seconds: float
    discovery_error: str

    @property
    def up(self) -> int:
        """Targets whose latest scrape succeeded."""
        return sum(1 for t in self.targets if t.up)

    @property
    def down(self) -> int:
        """Targets whose latest scrape failed."""
        return len(self.targets) - self.up


@dataclass(frozen=True)
class _TargetView:
    """One target's pod and device use at ``built_at``; true later on while the oldest sample it used
    (taken at ``oldest``) stays in the window and the target is not scraped (``scrapes`` matches)."""

    scrapes: int
    built_at: float
    oldest: float
    node: str
    # Whether any series was fresh: a node is seen while its exporter has fresh series, GPUs or not.
    seen: bool
    pods: dict[ObjectKey, tuple[DeviceUse, ...]]
    devices: tuple[DeviceUse, ...]
    # Per metric, the selector-less values of ``pods``, worked out at the first read that needs them.
    samples: dict[str, dict[ObjectKey, MetricSample]] = field(default_factory=dict)

    def holds(self, window: SeriesWindow, scrapes: int, now: float) -> bool:
        return self.scrapes == scrapes and self.built_at <= now and window.is_fresh(self.oldest, now)

    def pod_samples(self, metric: str, window_seconds: int) -> dict[ObjectKey, MetricSample]:
        """``metric`` for each of the target's pods that has it."""
        if metric not in self.samples:
            self.samples[metric] = _pod_samples(metric, self.pods, window_seconds)
        return self.samples[metric]


@dataclass
class _TargetState:
    target: Target
    window: SeriesWindow
    reported_node: str = ""
    up: bool = False
    last_scrape: float | None = None
    last_success: float | None = None
    duration: float = 0.0
    error: str = "not scraped yet"
    series: int = 0
    scrapes: int = 0
    view: _TargetView | None = None

    def current_view(self, now: float) -> _TargetView:
        """The target's use at ``now``: the last one worked out while it still holds."""
        view = self.view
        if view is None or not view.holds(self.window, self.scrapes, now):
            fresh, oldest = self.window.fresh_and_oldest(now)
            node = self.node
            pods, devices = device_use(fresh, node)
            view = self.view = _TargetView(self.scrapes, now, oldest, node, bool(fresh), pods, devices)
        return view

    @property
    def node(self) -> str:
        """Discovery's node, else the exporter's own ``node`` label, else the target's ``host:port``."""
        return self.target.node or self.reported_node or urlsplit(self.target.url).netloc

    def status(self) -> TargetStatus:
        return TargetStatus(
            self.target.url,
            self.node,
            self.up,
            self.last_scrape,
            self.last_success,
            self.duration,
            self.error,
            self.series,
        )


@dataclass(frozen=True)
class _Snapshot:
    pods: dict[ObjectKey, tuple[DeviceUse, ...]]
    nodes: dict[str, tuple[DeviceUse, ...]]
    # The target views it was merged from.
    views: tuple[_TargetView, ...] = ()
    # Pods with devices in several views: their values are no one view's.
    split: frozenset[ObjectKey] = frozenset()
    samples: dict[str, dict[ObjectKey, MetricSample]] = field(default_factory=dict)

    def pod_samples(self, metric: str, window_seconds: int) -> dict[ObjectKey, MetricSample]:
        """``metric`` for each pod that has it, from the views' own values.

        Built once per view and metric and shared by reads until the view changes: an object per pod
        per answer pushed the GC into a full collection every few dozen reads at a thousand pods.
        """
        if metric not in self.samples:
            merged: dict[ObjectKey, MetricSample] = {}
            for view in self.views:
                merged.update(view.pod_samples(metric, window_seconds))
            for pod in self.split:
                merged.pop(pod, None)
            merged.update(_pod_samples(metric, {pod: self.pods[pod] for pod in self.split}, window_seconds))
            self.samples[metric] = merged
        return self.samples[metric]


class DirectBackend:
    """Scrapes exporters every ``scrape_interval`` seconds and keeps ``window_seconds`` of samples.

    Values are means over the window. A series that has no sample within the window is absent, never
    zero; a target that stops answering keeps its last samples until they leave the window, and its
    objects' timestamps show how old they are.
    """

    def __init__(
        self,
        discovery: TargetDiscovery,
        *,
        scrape_interval: float = 5.0,
        window_seconds: int = 60,
        scrape_timeout: float = 4.0,
        concurrency: int = 32,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if window_seconds < scrape_interval:
            raise ValueError("the window must hold at least one scrape interval")
        self._discovery = discovery
        self._interval = scrape_interval
        self._window_seconds = window_seconds
        self._timeout = scrape_timeout
        self._concurrency = asyncio.Semaphore(concurrency)
        self._clock = clock
        self._states: dict[str, _TargetState] = {}
        self._rounds = 0
        self._last_round = 0.0
        self._discovery_error = ""
        self._round_lock = asyncio.Lock()
        self._merged = _Snapshot({}, {})
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def window_seconds(self) -> int:
        """The averaging window reported with every value."""
        return self._window_seconds

    @property
    def ready(self) -> bool:
        """A scrape round has finished and at least one exporter answered in it."""
        return self._rounds > 0 and any(state.up for state in self._states.values())

    async def start(self) -> None:
        if self._task is not None:
            return
        self._session = aiohttp.ClientSession(headers={"Accept": _ACCEPT})
        self._task = asyncio.create_task(self._run(), name="direct-backend-scrape")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def stats(self) -> BackendStats:
        """Targets up and down, and how the latest round went."""
        return BackendStats(
            tuple(state.status() for _, state in sorted(self._states.items())),
            self._rounds,
            self._last_round,
            self._discovery_error,
        )

    def metrics(self) -> Sequence[MetricDescriptor]:
        """Pod metrics serve workloads too, through ``aggregate``."""
        return [MetricDescriptor(name, OBJECT_RESOURCES) for name in METRICS]

    async def values(
        self,
        metric: str,
        resource: str,
        objects: Sequence[ObjectKey],
        metric_selector: Selector | None = None,
    ) -> Mapping[ObjectKey, MetricSample]:
        if metric not in METRICS or resource not in OBJECT_RESOURCES:
            raise UnknownMetric(f"metric {metric!r} is not served for {resource}")
        self._check_available()
        snapshot = self._snapshot()
        if resource == "pods":
            known = self._known_pod_samples(metric, snapshot, objects, metric_selector)
            return {key: sample for key in objects if (sample := known.get(key)) is not None}
        result: dict[ObjectKey, MetricSample] = {}
        for key in objects:
            value: Value | None
            if resource == "nodes":
                value = device_metric(metric, snapshot.nodes.get(key.name, ()), metric_selector)
            else:
                value = group_metric(
                    metric,
                    self._pod_values(
                        metric,
                        snapshot,
                        [pod for pod in snapshot.pods if pod.namespace == key.name],
                        metric_selector,
                    ),
                )
            if value is not None:
                result[key] = MetricSample(value.value, value.timestamp, self._window_seconds)
        return result

    async def aggregate(
        self,
        metric: str,
        pods: Sequence[ObjectKey],
        metric_selector: Selector | None = None,
    ) -> MetricSample | None:
        if metric not in METRICS:
            raise UnknownMetric(f"metric {metric!r} is not served")
        self._check_available()
        value = group_metric(metric, self._pod_values(metric, self._snapshot(), pods, metric_selector))
        return None if value is None else MetricSample(value.value, value.timestamp, self._window_seconds)

    def seen_objects(self, resource: str) -> Collection[ObjectKey]:
        """Pods, nodes or namespaces that have fresh GPU series now (for the static object resolver)."""
        snapshot = self._snapshot()
        if resource == "pods":
            # The snapshot's own keys, not a copy: a read of one pod asks whether it is among them.
            return snapshot.pods.keys()
        if resource == "nodes":
            return {ObjectKey("", node) for node in snapshot.nodes}
        if resource == "namespaces":
            return {ObjectKey("", pod.namespace) for pod in snapshot.pods}
        return set()

    async def scrape_round(self) -> None:
        """Refresh the targets and scrape each once; the background loop calls this every interval."""
        async with self._round_lock:
            await self._round()

    async def _round(self) -> None:
        started = time.monotonic()
        try:
            targets = await self._discovery.targets()
            self._discovery_error = ""
        except DiscoveryError as exc:
            if self._discovery_error != str(exc):
                log.warning(
                    "exporter discovery failed; keeping the previous targets", extra={"error": str(exc)}
                )
            self._discovery_error = str(exc)
        else:
            wanted = {target.url: target for target in targets}
            for url in list(self._states):
                if url not in wanted:
                    del self._states[url]
            for url, target in wanted.items():
                state = self._states.get(url)
                if state is None or state.target != target:
                    self._states[url] = _TargetState(target, SeriesWindow(self._window_seconds))
        await asyncio.gather(*(self._scrape(state) for state in list(self._states.values())))
        self._rounds += 1
        self._last_round = time.monotonic() - started

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await self.scrape_round()
            except Exception:  # the loop must survive anything one round throws
                log.exception("scrape round failed")
            await asyncio.sleep(max(0.0, self._interval - (loop.time() - started)))

    async def _scrape(self, state: _TargetState) -> None:
        session = self._session
        if session is None:
            raise RuntimeError("DirectBackend.start() was not called")
        async with self._concurrency:
            started = time.monotonic()
            timestamp = self._clock()
            state.last_scrape = timestamp
            try:
                async with session.get(
                    state.target.url, timeout=aiohttp.ClientTimeout(total=self._timeout)
                ) as response:
                    if response.status != 200:
                        raise ValueError(f"HTTP {response.status}")
                    body = await response.text()
                samples = await _parsed(body)
            except TimeoutError:
                self._failed(state, timestamp, f"no answer within {self._timeout:g}s")
            except Exception as exc:  # noqa: BLE001 - a target failing in any way is down; the round goes on
                self._failed(state, timestamp, str(exc) or type(exc).__name__)
            else:
                if not state.up:
                    log.info("exporter scrape succeeded", extra={"url": state.target.url})
                state.reported_node = next(
                    (s.label("node") for s in samples if s.name in NODE_SOURCES and s.label("node")), ""
                )
                state.window.record(timestamp, samples)
                state.up, state.error, state.last_success, state.series = True, "", timestamp, len(samples)
            finally:
                state.duration = time.monotonic() - started
                state.scrapes += 1
                # Worked out here, a target at a time, rather than for all targets at once by the first
                # read after a round.
                state.current_view(self._clock())

    @staticmethod
    def _failed(state: _TargetState, timestamp: float, error: str) -> None:
        if state.up or state.error != error:
            log.warning("exporter scrape failed", extra={"url": state.target.url, "error": error})
        state.up, state.error = False, error
        state.window.prune(timestamp)

    def _check_available(self) -> None:
        if self._rounds == 0:
            raise BackendUnavailable("no scrape of the GPU exporters has finished yet")
        if not self._states:
            detail = f": {self._discovery_error}" if self._discovery_error else ""
            raise BackendUnavailable(f"no GPU exporter targets are known{detail}")
        if not any(state.up for state in self._states.values()):
            failures = "; ".join(f"{url}: {state.error}" for url, state in sorted(self._states.items()))
            raise BackendUnavailable(f"every GPU exporter failed its latest scrape ({failures})")

    def _snapshot(self) -> _Snapshot:
        """Every pod's and node's device use now.

        Each target's part is worked out again only once it is scraped or a sample of it leaves the
        window, and the whole only merged again then: one read of one pod would otherwise cost as much
        as reading every series of every exporter.
        """
        now = self._clock()
        views = tuple(state.current_view(now) for state in self._states.values())
        merged = self._merged
        if len(views) == len(merged.views) and all(a is b for a, b in zip(views, merged.views, strict=True)):
            return merged
        pods, split = _merged((pod, uses) for view in views for pod, uses in view.pods.items())
        nodes, _ = _merged((view.node, view.devices) for view in views if view.seen)
        snapshot = _Snapshot(pods, nodes, views, frozenset(split))
        self._merged = snapshot
        return snapshot

    def _known_pod_samples(
        self, metric: str, snapshot: _Snapshot, pods: Sequence[ObjectKey], selector: Selector | None
    ) -> Mapping[ObjectKey, MetricSample]:
        """``metric`` for (at least) those of ``pods`` that have it."""
        if selector is None:
            return snapshot.pod_samples(metric, self._window_seconds)
        uses = {pod: snapshot.pods.get(pod, ()) for pod in pods}
        return _pod_samples(metric, uses, self._window_seconds, selector)

    def _pod_values(
        self, metric: str, snapshot: _Snapshot, pods: Sequence[ObjectKey], selector: Selector | None
    ) -> list[Value]:
        known = self._known_pod_samples(metric, snapshot, pods, selector)
        samples = (known.get(pod) for pod in pods)
        return [Value(sample.value, sample.timestamp) for sample in samples if sample is not None]


async def _parsed(body: str) -> list[Sample]:
    """The wanted samples of an exporter's body; see ``INLINE_PARSE_LIMIT`` for where it is parsed."""
    if len(body) <= INLINE_PARSE_LIMIT:
        return parse_exposition(body, WANTED_SERIES)
    return await asyncio.to_thread(parse_exposition, body, WANTED_SERIES)


def _merged(
    parts: Iterable[tuple[_Key, tuple[DeviceUse, ...]]],
) -> tuple[dict[_Key, tuple[DeviceUse, ...]], set[_Key]]:
    """The devices of each key over all targets, and the keys with devices in several.

    Every pod runs on one node, so joining is rare: sharing the views' tuples keeps a merge from
    allocating an object per pod, which would fill the GC's generations on every read after a scrape.
    """
    merged: dict[_Key, tuple[DeviceUse, ...]] = {}
    joined: set[_Key] = set()
    for key, uses in parts:
        known = merged.get(key)
        if known is None:
            merged[key] = uses
        else:
            merged[key] = known + uses
            joined.add(key)
    return merged, joined


def _pod_samples(
    metric: str,
    pods: Mapping[ObjectKey, Sequence[DeviceUse]],
    window_seconds: int,
    selector: Selector | None = None,
) -> dict[ObjectKey, MetricSample]:
    values = ((pod, device_metric(metric, uses, selector)) for pod, uses in pods.items())
    return {
        pod: MetricSample(value.value, value.timestamp, window_seconds)
        for pod, value in values
        if value is not None
    }
