"""deploy/prometheus: rules pass promtool's checks and unit tests; the scrape configs are valid."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import require_program

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULE_FILES = sorted((DEPLOY / "rules").glob("*.yaml"))
RULE_TESTS = sorted((DEPLOY / "tests").glob("*.yaml"))
CONFIGS = ("prometheus.yml", "prometheus-hpa.yml")


def promtool(*args: str, cwd: Path = DEPLOY) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_program("promtool", "/usr/bin/promtool"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_there_are_rules_and_rule_tests() -> None:
    assert {p.name for p in RULE_FILES} == {"recording-rules.yaml", "alerting-rules.yaml"}
    assert len(RULE_TESTS) >= 2


@pytest.mark.parametrize("rule_file", RULE_FILES, ids=lambda p: p.name)
def test_promtool_check_rules(rule_file: Path) -> None:
    result = promtool("check", "rules", str(rule_file))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("test_file", RULE_TESTS, ids=lambda p: p.name)
def test_promtool_test_rules(test_file: Path) -> None:
    result = promtool("test", "rules", str(test_file.relative_to(DEPLOY)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_rule_is_unit_tested() -> None:
    tested = "\n".join(p.read_text() for p in RULE_TESTS)
    for rule_file in RULE_FILES:
        for group in yaml.safe_load(rule_file.read_text())["groups"]:
            for rule in group["rules"]:
                name = rule.get("record") or rule["alert"]
                helper = name.endswith(":info") or name.endswith(":max")
                assert helper or name in tested, f"{name} in {rule_file.name} has no promtool test"


def test_recording_rules_follow_level_metric_operations() -> None:
    for group in yaml.safe_load((DEPLOY / "rules" / "recording-rules.yaml").read_text())["groups"]:
        for rule in group["rules"]:
            level, metric, operations = rule["record"].split(":")
            assert level, rule["record"]
            assert metric.startswith("gpu_"), rule["record"]
            assert operations, rule["record"]


def _job(config: dict[str, Any]) -> dict[str, Any]:
    (job,) = config["scrape_configs"]
    assert isinstance(job, dict)
    return job


@pytest.mark.parametrize("name", CONFIGS)
def test_scrape_config_is_valid(name: str, tmp_path: Path) -> None:
    config = yaml.safe_load((DEPLOY / name).read_text())
    job = _job(config)
    assert job["honor_labels"] is True
    assert job["kubernetes_sd_configs"] == [{"role": "pod"}]
    # Debian's Prometheus is built without Kubernetes service discovery; everything else is checked
    # with a static target in its place.
    del job["kubernetes_sd_configs"]
    job["static_configs"] = [{"targets": ["127.0.0.1:9402"]}]
    config["rule_files"] = [str(DEPLOY / rule) for rule in config["rule_files"]]
    checked = tmp_path / name
    checked.write_text(yaml.safe_dump(config))
    result = promtool("check", "config", str(checked), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 rule files found" in result.stdout


def test_hpa_variant_differs_only_in_intervals() -> None:
    plain = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    fast = yaml.safe_load((DEPLOY / "prometheus-hpa.yml").read_text())
    assert fast["global"] == {"scrape_interval": "5s", "evaluation_interval": "5s"}
    assert plain["global"] == {"scrape_interval": "15s", "evaluation_interval": "15s"}
    assert {k: v for k, v in fast.items() if k != "global"} == {
        k: v for k, v in plain.items() if k != "global"
    }
