"""The exporter's scenario-driven GPUs and pods (``--scenario``) and the lab's control file."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.app import build_exporter
from exporter.config import parse_config
from exporter.gpu.model import Field
from exporter.gpu.scenario import (
    Control,
    ControlError,
    ControlFile,
    ScenarioGpuSource,
    ScenarioNode,
    parse_control,
)
from exporter.gpu.simulated import DEFAULT_MEMORY_BYTES, IDLE_POWER_WATTS
from exporter.pods.allocations import PodResourcesHolders
from exporter.pods.model import ContainerRef
from exporter.pods.simulated import ScenarioAllocations
from kgm_common.scenario import Scenario, parse_scenario

STEP = parse_scenario(
    "duration: 600\ncapacityPerPod: 100\ninitialReplicas: 2\npodStartupSeconds: 30\nidleUtilization: 0.05\n"
    "load:\n  - {at: 0, rate: 100}\n  - {at: 100, rate: 300}\n"
)


class FakeClock:
    def __init__(self, now: float = 5000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def node(
    scenario: Scenario = STEP,
    *,
    gpus: int = 8,
    speed: float = 1.0,
    control: ControlFile | None = None,
    clock: FakeClock | None = None,
) -> tuple[ScenarioNode, FakeClock]:
    clock = clock or FakeClock()
    return ScenarioNode(
        scenario, deployment="infer", gpus=gpus, speed=speed, control=control, clock=clock
    ), clock


def write(path: Path, text: str) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(text)
    partial.replace(path)


def test_without_control_file_the_scenario_runs_from_the_exporters_start() -> None:
    world, clock = node(speed=10.0)
    now, pods = world.refresh()
    assert now == 0.0
    assert [(p.pod.name, p.gpus, p.ready) for p in pods] == [("infer-0", (0,), True), ("infer-1", (1,), True)]
    assert world.utilizations()[:3] == [pytest.approx(0.55), pytest.approx(0.55), 0.0]
    clock.now += 10.5  # 105 s of scenario time: 300 req/s on two pods saturates both
    assert world.utilizations()[:2] == [1.0, 1.0]


def test_new_pods_are_pending_at_idle_for_the_startup_time_then_share_the_load(tmp_path: Path) -> None:
    control = tmp_path / "control"
    write(control, "replicas=2\nstart=5000\n")
    world, clock = node(control=ControlFile(control))
    clock.now = 5000.0 + 110
    world.refresh()
    write(control, "replicas=4\nstart=5000\n")
    now, pods = world.refresh()
    assert now == 110
    assert [(p.pod.name, p.gpus, p.ready) for p in pods] == [
        ("infer-0", (0,), True),
        ("infer-1", (1,), True),
        ("infer-2", (2,), False),
        ("infer-3", (3,), False),
    ]
    assert world.utilizations()[:4] == [1.0, 1.0, 0.05, 0.05]
    clock.now += 29.9
    assert world.utilizations()[2] == 0.05
    clock.now += 0.1
    assert world.utilizations()[:4] == [pytest.approx(0.05 + 0.75)] * 4


def test_scale_down_removes_pending_pods_first_then_the_newest_and_frees_their_gpus(tmp_path: Path) -> None:
    control = tmp_path / "control"
    write(control, "replicas=3\nstart=5000\n")
    world, clock = node(control=ControlFile(control))
    clock.now = 5100.0
    write(control, "replicas=4\nstart=5000\n")
    world.refresh()
    write(control, "replicas=2\nstart=5000\n")
    _, pods = world.refresh()
    assert [p.pod.name for p in pods] == ["infer-0", "infer-1"]
    write(control, "replicas=3\nstart=5000\n")
    _, pods = world.refresh()
    assert [(p.pod.name, p.gpus) for p in pods][-1] == ("infer-4", (2,))


def test_the_scenario_holds_at_time_zero_until_the_control_file_gives_a_start(tmp_path: Path) -> None:
    control = tmp_path / "control"
    write(control, "replicas=3\n")
    world, clock = node(speed=60.0, control=ControlFile(control))
    clock.now += 1000
    now, pods = world.refresh()
    assert now == 0.0
    assert [p.ready for p in pods] == [True] * 3
    write(control, f"replicas=3\nstart={clock.now - 2}\n")
    assert world.refresh()[0] == 120.0


def test_a_new_start_restarts_the_deployment(tmp_path: Path) -> None:
    control = tmp_path / "control"
    write(control, "replicas=2\nstart=5000\n")
    world, clock = node(control=ControlFile(control))
    clock.now = 5100.0
    write(control, "replicas=5\nstart=5000\n")
    world.refresh()
    write(control, "replicas=2\nstart=5100\n")
    _, pods = world.refresh()
    assert [(p.pod.name, p.ready) for p in pods] == [("infer-0", True), ("infer-1", True)]


def test_pods_beyond_the_gpu_pool_stay_pending_without_gpus(caplog: pytest.LogCaptureFixture) -> None:
    scenario = parse_scenario(
        "duration: 60\ncapacityPerPod: 100\ninitialReplicas: 3\ngpusPerPod: 2\nload: [{at: 0, rate: 120}]\n"
    )
    with caplog.at_level(logging.WARNING):
        world, _ = node(scenario, gpus=5)
        _, pods = world.refresh()
        world.refresh()
    assert [(p.gpus, p.ready) for p in pods] == [((0, 1), True), ((2, 3), True), ((), False)]
    assert world.utilizations() == [pytest.approx(0.6)] * 4 + [0.0]
    assert sum("not enough simulated GPUs" in r.message for r in caplog.records) == 1


def test_the_scenarios_own_replica_changes_apply_without_control_file() -> None:
    scenario = parse_scenario(
        "duration: 600\ncapacityPerPod: 100\ninitialReplicas: 2\npodStartupSeconds: 0\n"
        "load: [{at: 0, rate: 100}]\nreplicas: [{at: 60, replicas: 4}]\n"
    )
    world, clock = node(scenario)
    clock.now += 60
    assert world.utilizations()[:5] == [0.25] * 4 + [0.0]


def test_noise_is_the_scenarios_and_reproducible() -> None:
    scenario = parse_scenario(
        "duration: 600\ncapacityPerPod: 100\ninitialReplicas: 2\nnoise: 0.1\nseed: 3\n"
        "load: [{at: 0, rate: 100}]\n"
    )
    first, clock_a = node(scenario)
    second, clock_b = node(scenario)
    readings = []
    for world, clock in ((first, clock_a), (second, clock_b)):
        clock.now += 17.3
        readings.append(world.utilizations())
    assert readings[0] == readings[1]
    assert readings[0][0] != readings[0][1]
    assert readings[0][0] == pytest.approx(scenario.utilization(17.3, 2, 0))


def test_gpu_readings_derive_memory_and_power_from_the_scenarios_utilization() -> None:
    world, _ = node(gpus=3)
    monotonic = FakeClock(0.0)
    source = ScenarioGpuSource(world, seed=1, clock=monotonic)
    device = source.devices()[0]
    reading = source.read(device)
    assert reading.values[Field.UTILIZATION] == pytest.approx(0.55)
    assert reading.values[Field.MEMORY_USED] == int(DEFAULT_MEMORY_BYTES * (0.05 + 0.6 * 0.55))
    idle = source.read(source.devices()[2])
    assert idle.values[Field.POWER] == IDLE_POWER_WATTS
    monotonic.now = 10.0
    assert source.read(device).values[Field.ENERGY] == pytest.approx(10 * reading.values[Field.POWER])


def test_allocations_name_the_deployments_pods_and_stay_the_same_object_while_unchanged(
    tmp_path: Path,
) -> None:
    control = tmp_path / "control"
    write(control, "replicas=2\nstart=5000\n")
    world, _ = node(control=ControlFile(control), clock=FakeClock(5000.0))
    source = ScenarioGpuSource(world)
    allocations = ScenarioAllocations(source, "gpu-demo")
    first = allocations.list_allocations()
    assert allocations.list_allocations() is first
    assert [(a.container, a.device_ids) for a in first] == [
        (ContainerRef("gpu-demo", "infer-0", "main"), (source.devices()[0].uuid,)),
        (ContainerRef("gpu-demo", "infer-1", "main"), (source.devices()[1].uuid,)),
    ]
    write(control, "replicas=3\nstart=5000\n")
    third = allocations.list_allocations()
    assert len(third) == 3
    holders = PodResourcesHolders(allocations).snapshot()
    assert holders.holders(source.devices()[2]) == (ContainerRef("gpu-demo", "infer-2", "main"),)
    assert len(allocations.allocatable()[0].device_ids) == 8


def test_parse_control() -> None:
    assert parse_control("replicas=4\n") == Control(4)
    assert parse_control("# lab\n replicas = 3 \nstart=1764097000.5\n\n") == Control(3, 1764097000.5)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "replicas=N is required"),
        ("start=1\n", "replicas=N is required"),
        ("replicas=-1\n", "integer from 0"),
        ("replicas=2.5\n", "integer from 0"),
        ("replicas=٣\n", "integer from 0"),
        ("replicas=10001\n", "integer from 0"),
        ("replicas=1\nreplicas=2\n", "line 2: replicas given twice"),
        ("replicas=1\nstart=nan\n", "start must be Unix seconds"),
        ("replicas=1\nstart=-5\n", "start must be Unix seconds"),
        ("replicas=1\nspeed=2\n", "line 2: expected"),
        ("4\n", "line 1: expected"),
    ],
)
def test_bad_control_content(text: str, message: str) -> None:
    with pytest.raises(ControlError, match=message):
        parse_control(text)


@given(st.text(max_size=200))
def test_any_text_parses_or_fails_with_control_error(text: str) -> None:
    try:
        control = parse_control(text)
    except ControlError:
        return
    assert 0 <= control.replicas <= 10_000


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60)
@given(st.binary(max_size=5000))
def test_any_file_content_never_crashes_and_bad_content_is_logged_once_and_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes
) -> None:
    path = tmp_path / "control"
    write(path, "replicas=3\n")
    control = ControlFile(path)
    world, _ = node(control=control)
    assert len(world.refresh()[1]) == 3
    caplog.clear()
    partial = tmp_path / "partial"
    partial.write_bytes(content)
    partial.replace(path)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            _, pods = world.refresh()
            world.utilizations()
    try:
        expected = parse_control(content.decode("utf-8")).replicas if len(content) <= 4096 else None
    except (UnicodeDecodeError, ControlError):
        expected = None
    warnings = [r for r in caplog.records if "ignoring the scenario control file" in r.message]
    assert len(pods) == (3 if expected is None else expected)
    assert len(warnings) == (1 if expected is None else 0)


def test_a_missing_control_file_keeps_the_scenarios_replicas(tmp_path: Path) -> None:
    world, _ = node(control=ControlFile(tmp_path / "absent"))
    assert len(world.refresh()[1]) == 2


def test_exporter_flags_for_scenarios(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text("duration: 60\ncapacityPerPod: 10\nload: [{at: 0, rate: 5}]\n")
    config = parse_config(
        ["--scenario", str(scenario), "--scenario-deployment", "gpu-demo/llm", "--scenario-speed", "30",
         "--scenario-control-file", str(tmp_path / "control"), "--simulated-gpus", "4"],
        environ={},
    )  # fmt: skip
    assert config.gpu_source == "simulated"
    assert config.scenario is not None
    assert config.scenario.capacity_per_pod == 10
    assert config.scenario_deployment == ContainerRef("gpu-demo", "llm", "main")
    assert config.scenario_speed == 30
    env = parse_config([], environ={"KGM_SCENARIO": str(scenario), "KGM_SCENARIO_SPEED": "2"})
    assert env.scenario is not None
    assert env.scenario_speed == 2
    assert parse_config([], environ={}).scenario_deployment == ContainerRef("default", "scenario", "main")
    exporter = build_exporter(config)
    try:
        assert len(exporter.source.devices()) == 4
        assert exporter.attribution.holders.snapshot().holders(exporter.source.devices()[0]) == (
            ContainerRef("gpu-demo", "llm-0", "main"),
        )
    finally:
        exporter.close()


@pytest.mark.parametrize(
    "flags",
    [
        ["--gpu-source", "nvml"],
        ["--simulated-pod", "ml/pod"],
        ["--simulated-profile", "constant:0.5"],
        ["--scenario-deployment", "ml/pod/container"],
    ],
)
def test_scenario_flags_that_do_not_go_together(tmp_path: Path, flags: list[str]) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text("duration: 60\ncapacityPerPod: 10\nload: [{at: 0, rate: 5}]\n")
    with pytest.raises(SystemExit):
        parse_config(["--scenario", str(scenario), *flags], environ={})


def test_a_control_file_needs_a_scenario_and_a_bad_scenario_names_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse_config(["--scenario-control-file", str(tmp_path / "control")], environ={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("duration: 60\ncapacityPerPod: 0\nload: [{at: 0, rate: 5}]\n")
    with pytest.raises(SystemExit):
        parse_config(["--scenario", str(bad)], environ={})
    assert "bad.yaml:2: capacityPerPod: must be greater than 0" in capsys.readouterr().err
