"""A GPU source that keeps trying to open its real source, with backoff, until it opens.

NVML may fail to initialise for a while on a healthy node: the driver is still loading, being
upgraded, or the device nodes appear after the exporter starts. Exiting would put the pod in
CrashLoopBackOff; serving with ``kgm_nvml_up`` at 0 and trying again on later scrapes recovers on its
own, and the scrape that opens the source is the only one that pays for the attempt.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from exporter.gpu.model import GpuDevice, GpuReading, ProcessUsage
from exporter.gpu.source import GpuSource

log = logging.getLogger(__name__)


class RetryingGpuSource:
    """No devices and not up until ``opener`` succeeds; from then on, the source it returned.

    ``opener`` raises ``retry_on`` while the source cannot be opened; attempts are made from
    ``devices()`` (every scrape calls it) no sooner than the current delay, which doubles from
    ``initial_delay`` up to ``max_delay`` seconds.
    """

    def __init__(
        self,
        name: str,
        opener: Callable[[], GpuSource],
        *,
        retry_on: type[Exception],
        first_error: str,
        initial_delay: float = 1.0,
        max_delay: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._name = name
        self._opener = opener
        self._retry_on = retry_on
        self._clock = clock
        self._initial_delay = initial_delay
        self._max_delay = max_delay
        self._delay = initial_delay
        self._next_attempt = clock() + initial_delay
        self._last_error = first_error
        self._attempts = 1
        self._source: GpuSource | None = None
        self._closed = False
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._name

    @property
    def up(self) -> bool:
        source = self._source
        return source is not None and source.up

    def devices(self) -> Sequence[GpuDevice]:
        source = self._source or self._try_open()
        return source.devices() if source is not None else ()

    def read(self, device: GpuDevice) -> GpuReading:
        source = self._source
        if source is None:
            raise LookupError(f"{self._name} is not open: device {device.uuid} cannot be read")
        return source.read(device)

    def processes(self, device: GpuDevice) -> Sequence[ProcessUsage]:
        source = self._source
        return source.processes(device) if source is not None else ()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            source, self._source = self._source, None
        if source is not None:
            source.close()

    def _try_open(self) -> GpuSource | None:
        # A scrape that finds another one already trying goes on without GPUs rather than queueing.
        if not self._lock.acquire(blocking=False):
            return None
        try:
            if self._closed or self._source is not None or self._clock() < self._next_attempt:
                return self._source
            self._attempts += 1
            try:
                self._source = self._opener()
            except self._retry_on as exc:
                error = str(exc)
                self._delay = min(self._delay * 2, self._max_delay)
                self._next_attempt = self._clock() + self._delay
                if error != self._last_error:
                    log.warning(
                        "%s still unavailable; retrying",
                        self._name,
                        extra={"error": error, "retry_in_seconds": self._delay},
                    )
                self._last_error = error
                return None
            log.info(
                "%s is available again; serving its gpus",
                self._name,
                extra={"attempts": self._attempts, "gpus": len(self._source.devices())},
            )
            return self._source
        finally:
            self._lock.release()
