"""Client for the kubelet's pod-resources API (``v1.PodResourcesLister``) over its unix socket.

One channel lives as long as the kubelet answers. Every call has a deadline. When a call fails the
channel is dropped and no call is tried until a backoff (doubling up to a ceiling) has passed, so
a missing socket costs one ``stat`` per scrape, not a connection attempt; the next call after the
backoff dials afresh, which is how a restarted kubelet (new socket) is picked up. ``List`` and
``GetAllocatableResources`` answers are cached for a short TTL so that several scrapes in quick
succession ask the kubelet once.
``Get`` and ``GetAllocatableResources`` are missing or switched off on some kubelets: once the
kubelet says so they are not asked again until it has restarted.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

import grpc
from google.protobuf.message import Message

from exporter.collectors.errors import ErrorCounts
from exporter.pods.model import AllocatableDevices, ContainerRef, DeviceAllocation
from exporter.pods.proto import api_pb2

log = logging.getLogger(__name__)

DEFAULT_SOCKET = "/var/lib/kubelet/pod-resources/kubelet.sock"
SERVICE = api_pb2.DESCRIPTOR.services_by_name["PodResourcesLister"].full_name
# The kubelet's own pod-resources client allows 16 MiB; List on a node with many pods exceeds gRPC's 4 MiB.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024

Response = TypeVar("Response", bound=Message)


@dataclass(frozen=True)
class ClientOptions:
    """Timing of the client: per-call deadline, answer cache lifetime, reconnect backoff bounds."""

    timeout_seconds: float = 2.0
    list_ttl_seconds: float = 1.0
    backoff_initial_seconds: float = 0.5
    backoff_max_seconds: float = 30.0


def allocations_from_pods(pods: Iterable[api_pb2.PodResources]) -> tuple[DeviceAllocation, ...]:
    """Flatten ``PodResources`` messages into one allocation per (container, resource)."""
    found: list[DeviceAllocation] = []
    for pod in pods:
        for container in pod.containers:
            ref = ContainerRef(pod.namespace, pod.name, container.name)
            for devices in container.devices:
                found.append(DeviceAllocation(ref, devices.resource_name, tuple(devices.device_ids)))
    return tuple(found)


def allocatable_from_response(
    response: api_pb2.AllocatableResourcesResponse,
) -> tuple[AllocatableDevices, ...]:
    """Merge the per-NUMA-node entries of ``GetAllocatableResources`` into one entry per resource."""
    by_resource: dict[str, list[str]] = {}
    for devices in response.devices:
        by_resource.setdefault(devices.resource_name, []).extend(devices.device_ids)
    return tuple(AllocatableDevices(name, tuple(ids)) for name, ids in sorted(by_resource.items()))


class _NoAnswerError(Exception):
    """The kubelet was not asked (backing off) or did not answer."""


class _NotOfferedError(Exception):
    """The kubelet does not serve this method."""


class _RejectedError(Exception):
    """The kubelet answered the call with an error of the request's own (an unknown pod)."""


# The kubelet turns its handlers' errors (such as "pod ... not found") into UNKNOWN: an answer, not an outage.
_REJECTIONS = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT}


def _status(error: grpc.RpcError) -> tuple[grpc.StatusCode | None, str]:
    """Code and details of a failed call (gRPC raises errors that are also ``grpc.Call``s)."""
    code, details = getattr(error, "code", None), getattr(error, "details", None)
    if callable(code) and callable(details):
        return code(), str(details() or "")
    return None, str(error)


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def _not_offered(code: grpc.StatusCode | None, details: str) -> bool:
    # Kubelets without the method answer UNIMPLEMENTED; kubelets with its feature gate off answer
    # UNKNOWN with "... disabled".
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return True
    return code == grpc.StatusCode.UNKNOWN and "disabled" in details


class PodResourcesClient:
    """Thread-safe client; calls answer None when the kubelet gives no answer."""

    def __init__(
        self,
        socket_path: str = DEFAULT_SOCKET,
        options: ClientOptions | None = None,
        *,
        errors: ErrorCounts | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._socket_path = socket_path
        self._options = options or ClientOptions()
        self._errors = errors
        self._clock = clock
        self._lock = threading.Lock()
        self._channel: grpc.Channel | None = None
        self._up: bool | None = None
        self._backoff = 0.0
        self._retry_at = float("-inf")
        self._not_offered: set[str] = set()
        self._list_cache: tuple[float, tuple[DeviceAllocation, ...]] | None = None
        self._allocatable_cache: tuple[float, tuple[AllocatableDevices, ...]] | None = None

    @property
    def up(self) -> bool:
        """Whether the latest call the kubelet was asked got an answer."""
        return bool(self._up)

    def list_allocations(self) -> tuple[DeviceAllocation, ...] | None:
        """Device allocations of every container on the node (``List``), at most ``list_ttl`` old."""
        with self._lock:
            now = self._clock()
            if self._list_cache is not None and now - self._list_cache[0] < self._options.list_ttl_seconds:
                return self._list_cache[1]
            try:
                request = api_pb2.ListPodResourcesRequest()
                response = self._call("List", request, api_pb2.ListPodResourcesResponse)
            except (_NoAnswerError, _NotOfferedError, _RejectedError):
                self._list_cache = None
                return None
            allocations = allocations_from_pods(response.pod_resources)
            self._list_cache = (self._clock(), allocations)
            return allocations

    def allocatable(self) -> tuple[AllocatableDevices, ...] | None:
        """Devices the kubelet can allocate (``GetAllocatableResources``); None if unknown or not offered."""
        with self._lock:
            cached = self._allocatable_cache
            if cached is not None and self._clock() - cached[0] < self._options.list_ttl_seconds:
                return cached[1]
            try:
                response = self._call(
                    "GetAllocatableResources",
                    api_pb2.AllocatableResourcesRequest(),
                    api_pb2.AllocatableResourcesResponse,
                )
            except (_NoAnswerError, _NotOfferedError, _RejectedError):
                self._allocatable_cache = None
                return None
            allocatable = allocatable_from_response(response)
            self._allocatable_cache = (self._clock(), allocatable)
            return allocatable

    def get(self, namespace: str, pod: str) -> tuple[DeviceAllocation, ...] | None:
        """Device allocations of one pod (``Get``); None if the pod is unknown, or ``Get`` unanswered."""
        with self._lock:
            try:
                response = self._call(
                    "Get",
                    api_pb2.GetPodResourcesRequest(pod_name=pod, pod_namespace=namespace),
                    api_pb2.GetPodResourcesResponse,
                )
            except (_NoAnswerError, _NotOfferedError, _RejectedError):
                return None
            if not response.HasField("pod_resources"):
                return ()
            return allocations_from_pods([response.pod_resources])

    def offers(self, method: str) -> bool:
        """False once the kubelet has said it does not serve ``method`` (until it restarts)."""
        with self._lock:
            return method not in self._not_offered

    def close(self) -> None:
        """Close the channel; later calls dial again."""
        with self._lock:
            self._drop_channel()

    def _call(self, method: str, request: Message, response_type: type[Response]) -> Response:
        if method in self._not_offered:
            raise _NotOfferedError(method)
        if self._clock() < self._retry_at:
            raise _NoAnswerError(method)
        if not os.path.exists(self._socket_path):
            self._failed(method, "socket missing")
            raise _NoAnswerError(method)
        callable_: grpc.UnaryUnaryMultiCallable[Message, Response] = self._connect().unary_unary(
            f"/{SERVICE}/{method}",
            request_serializer=_serialize,
            response_deserializer=response_type.FromString,
        )
        try:
            response: Response = callable_(request, timeout=self._options.timeout_seconds)
        except grpc.RpcError as error:
            code, details = _status(error)
            if _not_offered(code, details):
                self._not_offered.add(method)
                self._succeeded()
                log.info(
                    "kubelet does not offer this pod-resources method; not asking again",
                    extra={"method": method, "socket": self._socket_path, "error": details},
                )
                raise _NotOfferedError(method) from error
            if code in _REJECTIONS:
                self._succeeded()
                log.debug("kubelet rejected a pod-resources call", extra={"method": method, "error": details})
                raise _RejectedError(method) from error
            self._failed(method, f"{code.name if code else 'error'}: {details}")
            raise _NoAnswerError(method) from error
        self._succeeded()
        return response

    def _connect(self) -> grpc.Channel:
        if self._channel is None:
            self._channel = grpc.insecure_channel(
                f"unix://{os.path.abspath(self._socket_path)}",
                options=[
                    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                    # Our own backoff decides when to dial; keep gRPC's reconnect quick when it does.
                    ("grpc.initial_reconnect_backoff_ms", 100),
                    ("grpc.max_reconnect_backoff_ms", 1000),
                ],
            )
        return self._channel

    def _drop_channel(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def _succeeded(self) -> None:
        self._backoff = 0.0
        self._retry_at = float("-inf")
        if self._up is not True:
            log.info("kubelet pod-resources API answering", extra={"socket": self._socket_path})
        self._up = True

    def _failed(self, method: str, reason: str) -> None:
        if self._errors is not None:
            self._errors.add("pods")
        self._drop_channel()
        self._list_cache = None
        self._allocatable_cache = None
        options = self._options
        doubled = max(options.backoff_initial_seconds, self._backoff * 2)
        self._backoff = min(options.backoff_max_seconds, doubled)
        self._retry_at = self._clock() + self._backoff
        if self._up is not False:
            log.warning(
                "kubelet pod-resources API not answering; attribution off until it returns",
                extra={
                    "socket": self._socket_path,
                    "method": method,
                    "error": reason,
                    "retry_in_seconds": self._backoff,
                },
            )
            # A kubelet that comes back may be a newer one that serves methods the old one did not.
            self._not_offered.clear()
        self._up = False
