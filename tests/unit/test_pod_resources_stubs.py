"""The checked-in pod-resources stubs: upstream names, and importable on the oldest runtimes we allow."""

from __future__ import annotations

from pathlib import Path

from exporter.pods.kubelet_client import SERVICE
from exporter.pods.proto import api_pb2

PROTO = Path(__file__).resolve().parents[2] / "exporter" / "pods" / "proto"


def test_service_and_methods_keep_the_kubelets_names() -> None:
    service = api_pb2.DESCRIPTOR.services_by_name["PodResourcesLister"]
    assert SERVICE == service.full_name == "v1.PodResourcesLister"
    assert [m.name for m in service.methods] == ["List", "GetAllocatableResources", "Get"]


def test_generated_code_carries_no_runtime_version_gate() -> None:
    # Newer grpcio-tools stamp a check that refuses protobuf/grpcio older than the generator;
    # scripts/gen-podresources-stubs pins a generator whose output runs on protobuf 4.25 and grpcio 1.60.
    assert "ValidateProtobufRuntimeVersion" not in (PROTO / "api_pb2.py").read_text()
    assert "GRPC_GENERATED_VERSION" not in (PROTO / "api_pb2_grpc.py").read_text()
