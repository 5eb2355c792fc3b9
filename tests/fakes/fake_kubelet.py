"""A kubelet pod-resources server built from the exporter's own stubs, on a real unix socket.

It serves configurable pods and allocatable devices, counts the calls it gets, can answer
UNIMPLEMENTED (an older kubelet) or "disabled" (a feature gate off) for ``Get`` and
``GetAllocatableResources``, and can stop and start again, removing its socket in between as a
restarting kubelet does.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from concurrent import futures
from dataclasses import dataclass, field

import grpc

from exporter.pods.proto import api_pb2, api_pb2_grpc


@dataclass
class Allocation:
    """Devices of one resource given to one container."""

    namespace: str
    pod: str
    container: str
    resource: str
    device_ids: list[str]


@dataclass
class KubeletState:
    """What the fake kubelet answers; tests change it between calls."""

    allocations: list[Allocation] = field(default_factory=list)
    allocatable: dict[str, list[str]] = field(default_factory=dict)
    # "serve", "unimplemented" (method missing) or "disabled" (feature gate off)
    get_mode: str = "unimplemented"
    allocatable_mode: str = "serve"
    delay_seconds: float = 0.0


def _pods(allocations: list[Allocation]) -> list[api_pb2.PodResources]:
    pods: dict[tuple[str, str], dict[str, list[api_pb2.ContainerDevices]]] = {}
    for a in allocations:
        containers = pods.setdefault((a.namespace, a.pod), {})
        containers.setdefault(a.container, []).append(
            api_pb2.ContainerDevices(resource_name=a.resource, device_ids=a.device_ids)
        )
    return [
        api_pb2.PodResources(
            namespace=namespace,
            name=name,
            containers=[api_pb2.ContainerResources(name=c, devices=d) for c, d in containers.items()],
        )
        for (namespace, name), containers in pods.items()
    ]


class _Servicer:
    """``v1.PodResourcesLister`` as the generated server code calls it."""

    def __init__(self, kubelet: FakeKubelet) -> None:
        self._kubelet = kubelet

    def _answer(self, method: str, mode: str, context: grpc.ServicerContext) -> None:
        self._kubelet.calls[method] += 1
        if self._kubelet.state.delay_seconds:
            threading.Event().wait(self._kubelet.state.delay_seconds)
        if mode == "unimplemented":
            context.abort(
                grpc.StatusCode.UNIMPLEMENTED, f"unknown method {method} for service v1.PodResourcesLister"
            )
        if mode == "disabled":
            context.abort(grpc.StatusCode.UNKNOWN, f"PodResources API {method} disabled")

    def List(  # noqa: N802 - the proto's method name
        self, request: api_pb2.ListPodResourcesRequest, context: grpc.ServicerContext
    ) -> api_pb2.ListPodResourcesResponse:
        self._answer("List", "serve", context)
        return api_pb2.ListPodResourcesResponse(pod_resources=_pods(self._kubelet.state.allocations))

    def GetAllocatableResources(  # noqa: N802 - the proto's method name
        self, request: api_pb2.AllocatableResourcesRequest, context: grpc.ServicerContext
    ) -> api_pb2.AllocatableResourcesResponse:
        self._answer("GetAllocatableResources", self._kubelet.state.allocatable_mode, context)
        return api_pb2.AllocatableResourcesResponse(
            devices=[
                api_pb2.ContainerDevices(resource_name=name, device_ids=ids)
                for name, ids in self._kubelet.state.allocatable.items()
            ]
        )

    def Get(  # noqa: N802 - the proto's method name
        self, request: api_pb2.GetPodResourcesRequest, context: grpc.ServicerContext
    ) -> api_pb2.GetPodResourcesResponse:
        self._answer("Get", self._kubelet.state.get_mode, context)
        wanted = [
            a
            for a in self._kubelet.state.allocations
            if (a.namespace, a.pod) == (request.pod_namespace, request.pod_name)
        ]
        if not wanted:
            context.abort(
                grpc.StatusCode.NOT_FOUND, f"pod {request.pod_namespace}/{request.pod_name} not found"
            )
        return api_pb2.GetPodResourcesResponse(pod_resources=_pods(wanted)[0])


class FakeKubelet:
    """The fake pod-resources server; ``start``/``stop`` may be called repeatedly."""

    def __init__(self, socket_path: str, state: KubeletState | None = None) -> None:
        self.socket_path = socket_path
        self.state = state or KubeletState()
        self.calls: Counter[str] = Counter()
        self._server: grpc.Server | None = None

    def start(self) -> None:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        api_pb2_grpc.add_PodResourcesListerServicer_to_server(_Servicer(self), server)  # type: ignore[no-untyped-call]
        server.add_insecure_port(f"unix://{self.socket_path}")
        server.start()
        self._server = server

    def stop(self) -> None:
        """Stop serving and remove the socket, as a kubelet going away does."""
        if self._server is not None:
            self._server.stop(grace=None).wait()
            self._server = None
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)
