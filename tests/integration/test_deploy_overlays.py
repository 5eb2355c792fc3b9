"""Every kustomization under deploy/ renders, and every object it renders is valid for a real cluster.

Kubernetes kinds are checked against the API server's OpenAPI schemas (the ``kubernetes-validate``
package, offline); Prometheus Operator and cert-manager kinds against their CRD schemas, vendored in
tests/data/crds/.

``python -m tests.integration.test_deploy_overlays --write-prometheus-rule`` regenerates the
PrometheusRule of the Prometheus Operator component from deploy/prometheus/rules/.
"""

from __future__ import annotations

import copy
import importlib
import json
import subprocess
import sys
from functools import cache
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.integration.processes import REPO
from tests.support import IN_CI, require_program

DEPLOY = REPO / "deploy"
CRDS = REPO / "tests" / "data" / "crds"
RULES = DEPLOY / "prometheus" / "rules"
PROMETHEUS_RULE = DEPLOY / "components" / "prometheus-operator" / "prometheusrule.yaml"

# Components render only as part of a kustomization; every one is used by an overlay.
KUSTOMIZATIONS = sorted(
    p.parent.relative_to(DEPLOY).as_posix()
    for p in DEPLOY.rglob("kustomization.yaml")
    if yaml.safe_load(p.read_text()).get("kind", "Kustomization") == "Kustomization"
)
COMPONENTS = sorted(p.parent.name for p in (DEPLOY / "components").glob("*/kustomization.yaml"))

Objects = dict[tuple[str, str], dict[str, Any]]


@cache
def render(kustomization: str) -> tuple[dict[str, Any], ...]:
    kubectl = require_program("kubectl")
    result = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY / kustomization)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"kubectl kustomize deploy/{kustomization}:\n{result.stderr}"
    return tuple(o for o in yaml.safe_load_all(result.stdout) if o)


def objects(kustomization: str) -> Objects:
    return {(o["kind"], o["metadata"]["name"]): o for o in render(kustomization)}


def _closed(schema: Any) -> Any:
    """The schema with unknown fields rejected, as ``kubectl apply --validate=strict`` does."""
    if isinstance(schema, list):
        return [_closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {k: _closed(v) for k, v in schema.items()}
    if (
        "properties" in closed
        and "additionalProperties" not in closed
        and not closed.get("x-kubernetes-preserve-unknown-fields")
    ):
        closed["additionalProperties"] = False
    return closed


@cache
def crd_schema(api_version: str, kind: str) -> dict[str, Any] | None:
    group, _, version = api_version.rpartition("/")
    path = CRDS / f"{group}_{version}_{kind}.json"
    if not path.exists():
        return None
    schema: dict[str, Any] = _closed(json.loads(path.read_text()))
    # The CRD schema leaves metadata open; the API server checks it like any object's metadata.
    schema["properties"]["metadata"] = {"type": "object"}
    return schema


def _require_module(name: str) -> ModuleType:
    """A validation library from the dev extras; missing fails in CI and skips elsewhere."""
    try:
        return importlib.import_module(name)
    except ImportError:
        message = f"{name} is not installed (pip install -e '.[dev]')"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def _schema_errors(obj: dict[str, Any]) -> list[str]:
    name = f"{obj['kind']}/{obj['metadata']['name']}"
    schema = crd_schema(obj["apiVersion"], obj["kind"])
    if schema is not None:
        validator = _require_module("jsonschema").Draft7Validator(schema)
        return [
            f"{name}: {'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in validator.iter_errors(obj)
        ]
    kubernetes_validate = _require_module("kubernetes_validate")
    # The oldest and the newest Kubernetes whose schemas the installed package ships.
    shipped = sorted(kubernetes_validate.utils.all_versions(), key=lambda v: tuple(map(int, v.split("."))))
    errors = []
    for version in (shipped[0], shipped[-1]):
        try:
            kubernetes_validate.validate(copy.deepcopy(obj), version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(map(str, exc.path)) or "<root>"
            errors.append(f"{name} (Kubernetes {version}): {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError:
            errors.append(f"{name}: no schema for {obj['apiVersion']} {obj['kind']} in Kubernetes {version}")
    return errors


def test_every_overlay_is_found_and_every_component_has_one() -> None:
    assert {"base", "examples"} <= set(KUSTOMIZATIONS)
    assert set(COMPONENTS) >= {"prometheus", "prometheus-operator", "serving-cert", "cert-manager"}
    for component in COMPONENTS:
        assert f"overlays/{component}" in KUSTOMIZATIONS


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_renders_objects_valid_for_the_api_server(kustomization: str) -> None:
    rendered = render(kustomization)
    assert rendered, f"deploy/{kustomization} renders nothing"
    errors = [error for obj in rendered for error in _schema_errors(obj)]
    assert not errors, "\n".join(errors)


def test_schema_check_catches_a_misspelled_field() -> None:
    monitor = copy.deepcopy(objects("overlays/prometheus-operator")[("PodMonitor", "kube-gpu-exporter")])
    monitor["spec"]["podMetricsEndpoints"][0]["honorlabels"] = True
    assert any("honorlabels" in e for e in _schema_errors(monitor))
    adapter = copy.deepcopy(objects("base")[("Deployment", "kube-gpu-adapter")])
    adapter["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFileSystem"] = True
    assert _schema_errors(adapter)


def _adapter_args(objs: Objects) -> list[str]:
    args: list[str] = objs[("Deployment", "kube-gpu-adapter")]["spec"]["template"]["spec"]["containers"][0][
        "args"
    ]
    return args


def test_components_combine() -> None:
    objs = objects("overlays/cert-manager-prometheus-operator")
    args = _adapter_args(objs)
    assert "--backend=prometheus" in args
    assert any(a.startswith("--tls-cert-file=") for a in args)
    assert len(args) == len(set(args))
    external = objs[("APIService", "v1beta1.external.metrics.k8s.io")]
    assert external["spec"]["insecureSkipTLSVerify"] is False
    assert "cert-manager.io/inject-ca-from" in external["metadata"]["annotations"]


@pytest.mark.parametrize("kustomization", [k for k in KUSTOMIZATIONS if k.startswith("overlays/")])
def test_every_apiservice_of_an_overlay_is_verified_alike(kustomization: str) -> None:
    specs = [o["spec"] for o in render(kustomization) if o["kind"] == "APIService"]
    assert len({s["insecureSkipTLSVerify"] for s in specs}) == 1, specs


@pytest.mark.parametrize("overlay", ["overlays/prometheus", "overlays/prometheus-operator"])
def test_prometheus_overlays_serve_external_metrics_to_the_hpa_controller(overlay: str) -> None:
    objs = objects(overlay)
    service = objs[("APIService", "v1beta1.external.metrics.k8s.io")]["spec"]
    assert (service["group"], service["service"]["name"]) == ("external.metrics.k8s.io", "kube-gpu-adapter")
    binding = objs[("ClusterRoleBinding", "kube-gpu-metrics:hpa-external-metrics-reader")]
    assert binding["subjects"][0]["name"] == "horizontal-pod-autoscaler"


@pytest.mark.parametrize("overlay", ["overlays/prometheus", "overlays/prometheus-operator"])
def test_prometheus_overlays_switch_the_adapter_backend(overlay: str) -> None:
    args = _adapter_args(objects(overlay))
    assert [a for a in args if a.startswith("--backend")] == ["--backend=prometheus"]
    assert not [a for a in _adapter_args(objects("base")) if a.startswith("--backend")]
    assert any(a.startswith("--prometheus-url=http") for a in args)


def test_plain_prometheus_overlay_annotates_exporter_pods() -> None:
    template = objects("overlays/prometheus")[("DaemonSet", "kube-gpu-exporter")]["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    port = template["spec"]["containers"][0]["ports"][0]["containerPort"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port)


def test_scrape_config_snippet_is_the_shipped_job() -> None:
    snippet = yaml.safe_load((DEPLOY / "components" / "prometheus" / "scrape-config.yaml").read_text())
    [job] = snippet["scrape_configs"]
    assert job["honor_labels"] is True
    shipped = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert job in shipped["scrape_configs"]


def test_pod_monitor_honors_the_exporters_labels() -> None:
    objs = objects("overlays/prometheus-operator")
    monitor = objs[("PodMonitor", "kube-gpu-exporter")]["spec"]
    template = objs[("DaemonSet", "kube-gpu-exporter")]["spec"]["template"]
    labels = template["metadata"]["labels"]
    assert monitor["selector"]["matchLabels"].items() <= labels.items()
    ports = {p["name"] for p in template["spec"]["containers"][0]["ports"]}
    for endpoint in monitor["podMetricsEndpoints"]:
        assert endpoint["honorLabels"] is True
        assert endpoint["port"] in ports
        dropped = [r["regex"] for r in endpoint["relabelings"] if r.get("action") == "labeldrop"]
        assert set("|".join(dropped).split("|")) >= {"namespace", "pod", "container"}


class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings (PromQL) as literal blocks, as the rule files have them."""


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_BlockDumper.add_representer(str, _represent_str)


def prometheus_rule_manifest() -> str:
    """The PrometheusRule holding every rule group of deploy/prometheus/rules, in file order."""
    groups = [
        group
        for path in sorted(RULES.glob("*.yaml"))
        for group in yaml.safe_load(path.read_text()).get("groups", [])
    ]
    rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "kube-gpu-metrics", "namespace": "kube-gpu-metrics"},
        "spec": {"groups": groups},
    }
    header = (
        "# Generated from deploy/prometheus/rules/*.yaml; edit those and regenerate with\n"
        "#   python -m tests.integration.test_deploy_overlays --write-prometheus-rule\n"
    )
    return header + yaml.dump(rule, Dumper=_BlockDumper, sort_keys=False, allow_unicode=True, width=100)


def test_prometheus_rule_is_the_shipped_rules() -> None:
    if not RULES.is_dir():
        pytest.skip("deploy/prometheus/rules does not exist")
    rendered = objects("overlays/prometheus-operator")[("PrometheusRule", "kube-gpu-metrics")]
    expected = yaml.safe_load(prometheus_rule_manifest())
    assert rendered["spec"] == expected["spec"], (
        "deploy/components/prometheus-operator/prometheusrule.yaml is out of date; run "
        "python -m tests.integration.test_deploy_overlays --write-prometheus-rule"
    )


def test_cert_manager_overlay_verifies_the_adapter() -> None:
    objs = objects("overlays/cert-manager")
    pod = objs[("Deployment", "kube-gpu-adapter")]["spec"]["template"]["spec"]
    [secret_volume] = [v for v in pod["volumes"] if "secret" in v]
    [mount] = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == secret_volume["name"]]
    args = pod["containers"][0]["args"]
    assert f"--tls-cert-file={mount['mountPath']}/tls.crt" in args
    assert f"--tls-private-key-file={mount['mountPath']}/tls.key" in args
    for version in ("v1beta1", "v1beta2"):
        api_service = objs[("APIService", f"{version}.custom.metrics.k8s.io")]
        spec = api_service["spec"]
        assert spec["insecureSkipTLSVerify"] is False
        namespace, name = api_service["metadata"]["annotations"]["cert-manager.io/inject-ca-from"].split("/")
        certificate = objs[("Certificate", name)]
        assert certificate["metadata"]["namespace"] == namespace
        assert certificate["spec"]["secretName"] == secret_volume["secret"]["secretName"]
        service = spec["service"]
        assert f"{service['name']}.{service['namespace']}.svc" in certificate["spec"]["dnsNames"]
        assert objs[("Issuer", certificate["spec"]["issuerRef"]["name"])]


def test_example_hpa_scales_the_example_workload_on_gpu_metrics() -> None:
    objs = objects("examples")
    [hpa] = [o for (kind, _), o in objs.items() if kind == "HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    workload = objs[(target["kind"], target["name"])]
    assert workload["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    names = {m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"]}
    assert names == {"gpu_utilization", "gpu_memory_utilization"}


if __name__ == "__main__":
    if sys.argv[1:] != ["--write-prometheus-rule"]:
        sys.exit(f"usage: {sys.argv[0]} --write-prometheus-rule")
    PROMETHEUS_RULE.write_text(prometheus_rule_manifest())
    print(f"wrote {PROMETHEUS_RULE.relative_to(REPO)}")
