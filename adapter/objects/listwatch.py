"""A list/watch cache of one kind of Kubernetes object, kept current by a background thread."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from kubernetes.client.exceptions import ApiException

log = logging.getLogger(__name__)

GONE = 410


@dataclass(frozen=True)
class CachedObject:
    """What the adapter needs of an object: its name, labels and controlling owner."""

    namespace: str
    name: str
    uid: str
    labels: Mapping[str, str]
    controller_uid: str


def cached_object(obj: Any) -> CachedObject:
    """The cached view of a ``kubernetes`` client model (``V1Pod``, ``V1Node``, ``V1Namespace``, ...)."""
    meta = obj.metadata
    controller = next((ref for ref in meta.owner_references or [] if ref.controller), None)
    return CachedObject(
        namespace=meta.namespace or "",
        name=meta.name,
        uid=meta.uid or "",
        labels=dict(meta.labels or {}),
        controller_uid=controller.uid if controller else "",
    )


class Watch(Protocol):
    """The part of ``kubernetes.watch.Watch`` the cache uses."""

    def stream(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Iterator[dict[str, Any]]: ...

    def stop(self) -> None: ...


class _WatchExpiredError(Exception):
    """The watch's resourceVersion is too old (410 Gone): list again."""


class ListWatchCache:
    """Lists, then watches from the list's resourceVersion; relists on 410 Gone and after errors.

    The list comes in pages of ``page_size`` (one consistent snapshot, gentler on a large cluster's
    API server). The watch ends every ``watch_timeout`` seconds (server side, with a client timeout a
    little longer) and resumes from the newest resourceVersion seen, bookmarks included, so a quiet or
    broken connection never stalls the cache for long. Failures back off from ``retry_seconds``,
    doubling up to a minute.
    """

    def __init__(
        self,
        kind: str,
        list_func: Callable[..., Any],
        watch_factory: Callable[[], Watch],
        *,
        watch_timeout: int = 300,
        request_timeout: float = 60.0,
        retry_seconds: float = 1.0,
        page_size: int = 500,
    ) -> None:
        self.kind = kind
        self._list = list_func
        self._watch_factory = watch_factory
        self._watch_timeout = watch_timeout
        self._request_timeout = request_timeout
        self._retry = retry_seconds
        self._page_size = page_size
        self._objects: dict[tuple[str, str], CachedObject] = {}
        self._lock = threading.Lock()
        self._synced = threading.Event()
        self._stopping = threading.Event()
        self._watch: Watch | None = None
        self._thread: threading.Thread | None = None
        self.last_error = ""
        self.lists = 0

    @property
    def synced(self) -> bool:
        """Whether the first list has completed."""
        return self._synced.is_set()

    def wait_synced(self, timeout: float) -> bool:
        """Block until the first list completes or ``timeout`` passes."""
        return self._synced.wait(timeout)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"watch-{self.kind}", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """End the thread: ``Watch.stop`` shuts the watch's socket (older clients: it ends at its timeout)."""
        self._stopping.set()
        watch = self._watch
        if watch is not None:
            watch.stop()
        if self._thread is not None:
            self._thread.join(timeout)

    def get(self, namespace: str, name: str) -> CachedObject | None:
        with self._lock:
            return self._objects.get((namespace, name))

    def items(self) -> list[CachedObject]:
        with self._lock:
            return list(self._objects.values())

    def _run(self) -> None:
        delay = self._retry
        while not self._stopping.is_set():
            try:
                version = self._relist()
                delay = self._retry
                while not self._stopping.is_set():
                    version = self._watch_once(version)
            except _WatchExpiredError:
                log.info("watch expired; listing again", extra={"kind": self.kind})
            except Exception as exc:  # noqa: BLE001 - any failure: report, wait, list again
                if self._stopping.is_set():
                    return  # stop() cut the watch's connection
                error = str(exc) or type(exc).__name__
                if error != self.last_error:
                    log.warning("list/watch failed; retrying", extra={"kind": self.kind, "error": error})
                self.last_error = error
                self._stopping.wait(delay)
                delay = min(delay * 2, 60.0)

    def _relist(self) -> str:
        objects: dict[tuple[str, str], CachedObject] = {}
        version = ""
        token: str | None = None
        while True:
            page_options: dict[str, Any] = {
                "limit": self._page_size,
                "_request_timeout": self._request_timeout,
            }
            if token:
                page_options["_continue"] = token
            listing = self._list(**page_options)
            for obj in map(cached_object, listing.items or []):
                objects[(obj.namespace, obj.name)] = obj
            version = version or str(listing.metadata.resource_version)
            token = getattr(listing.metadata, "_continue", None)
            if not token:
                break
        with self._lock:
            self._objects = objects
        self.lists += 1
        self.last_error = ""
        self._synced.set()
        return version

    def _watch_once(self, version: str) -> str:
        watch = self._watch_factory()
        self._watch = watch
        try:
            for event in watch.stream(
                self._list,
                resource_version=version,
                timeout_seconds=self._watch_timeout,
                allow_watch_bookmarks=True,
                _request_timeout=self._watch_timeout + self._request_timeout,
            ):
                if self._stopping.is_set():
                    break
                version = self._apply(event, version)
        except ApiException as exc:
            if exc.status == GONE:
                raise _WatchExpiredError from exc
            raise
        finally:
            self._watch = None
        return version

    def _apply(self, event: Mapping[str, Any], version: str) -> str:
        kind, raw = event.get("type"), event.get("raw_object") or {}
        if kind == "ERROR":
            if raw.get("code") == GONE:
                raise _WatchExpiredError
            raise RuntimeError(f"watch error: {raw.get('reason')}: {raw.get('message')}")
        if kind == "BOOKMARK":
            return str(raw.get("metadata", {}).get("resourceVersion") or version)
        obj = event["object"]
        cached = cached_object(obj)
        with self._lock:
            if kind == "DELETED":
                self._objects.pop((cached.namespace, cached.name), None)
            else:
                self._objects[(cached.namespace, cached.name)] = cached
        return str(obj.metadata.resource_version or version)
