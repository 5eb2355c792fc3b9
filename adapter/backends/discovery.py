"""Where the exporters are: a static URL list, or the EndpointSlices of the exporter Service."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit


@dataclass(frozen=True, order=True)
class Target:
    """One exporter ``/metrics`` URL and, when discovery knows it, the node it runs on."""

    url: str
    node: str = ""


class DiscoveryError(Exception):
    """Targets could not be listed now; the previous list stays in use."""


class TargetDiscovery(Protocol):
    """Lists the exporters to scrape; called before each scrape round, so it caches as it sees fit."""

    async def targets(self) -> Sequence[Target]:
        """The current targets; raises ``DiscoveryError``."""
        ...


def static_target(url: str) -> Target:
    """A ``--exporter-url`` value as a target; a bare ``host:port`` gets ``http://`` and ``/metrics``."""
    text = url.strip()
    if "://" not in text:
        text = f"http://{text}"
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"bad exporter URL {url!r}: expected http(s)://HOST:PORT[/metrics]")
    if parts.path in ("", "/"):
        text = parts._replace(path="/metrics").geturl()
    return Target(text)


class StaticTargets:
    """A fixed list (``--exporter-url``, repeatable); nodes come from the exporters' own ``node`` label."""

    def __init__(self, urls: Sequence[str]) -> None:
        if not urls:
            raise ValueError("at least one exporter URL is needed")
        self._targets = tuple(dict.fromkeys(static_target(url) for url in urls))

    async def targets(self) -> Sequence[Target]:
        return self._targets


class EndpointSliceDiscovery:
    """Ready endpoints of the exporter Service, from ``discovery.k8s.io/v1`` EndpointSlices.

    EndpointSlices rather than exporter pods because the Service already names the port and readiness,
    and each endpoint carries ``nodeName``, which is how node metrics find their exporter.
    """

    def __init__(
        self,
        discovery_api: Any,
        *,
        namespace: str,
        service: str,
        port_name: str = "metrics",
        scheme: str = "http",
        path: str = "/metrics",
        refresh_seconds: float = 30.0,
        request_timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = discovery_api
        self._namespace = namespace
        self._service = service
        self._port_name = port_name
        self._scheme = scheme
        self._path = path
        self._refresh = refresh_seconds
        self._timeout = request_timeout
        self._clock = clock
        self._cached: tuple[Target, ...] | None = None
        self._listed_at = 0.0

    async def targets(self) -> Sequence[Target]:
        now = self._clock()
        if self._cached is not None and now - self._listed_at < self._refresh:
            return self._cached
        try:
            slices = await asyncio.to_thread(
                self._api.list_namespaced_endpoint_slice,
                self._namespace,
                label_selector=f"kubernetes.io/service-name={self._service}",
                _request_timeout=self._timeout,
            )
        except Exception as exc:  # any client failure means "keep the old list"
            raise DiscoveryError(
                f"listing EndpointSlices of service {self._namespace}/{self._service}: {exc}"
            ) from exc
        self._cached = tuple(sorted(set(self._from_slices(slices.items or []))))
        self._listed_at = now
        return self._cached

    def _from_slices(self, slices: Sequence[Any]) -> list[Target]:
        targets: list[Target] = []
        for endpoint_slice in slices:
            ports = endpoint_slice.ports or []
            port = next((p.port for p in ports if p.name == self._port_name or len(ports) == 1), None)
            if port is None:
                continue
            for endpoint in endpoint_slice.endpoints or []:
                if endpoint.conditions is not None and endpoint.conditions.ready is False:
                    continue
                for address in endpoint.addresses or []:
                    host = f"[{address}]" if ":" in address else address
                    targets.append(
                        Target(f"{self._scheme}://{host}:{port}{self._path}", endpoint.node_name or "")
                    )
        return targets
