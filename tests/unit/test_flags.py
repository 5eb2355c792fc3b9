"""Flags, their KGM_* environment twins, and listen addresses."""

from __future__ import annotations

import argparse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.config import parse_config
from exporter.gpu.profiles import Constant
from kgm_common.addresses import ListenAddress, parse_listen_address
from kgm_common.flags import env_name, parse_bool


def test_env_names() -> None:
    assert env_name("--gpu-source") == "KGM_GPU_SOURCE"
    assert env_name("--listen") == "KGM_LISTEN"


def test_defaults_fit_the_daemonset() -> None:
    config = parse_config([], {"NODE_NAME": "gpu-node-1"})
    assert config.listen == ListenAddress("0.0.0.0", 9402)
    assert config.gpu_source == "auto"
    assert config.node_name == "gpu-node-1"
    assert config.host_metrics is True
    assert config.proc_root == "/proc"
    assert config.pod_resources_socket == "/var/lib/kubelet/pod-resources/kubelet.sock"


def test_env_twins_set_defaults_and_flags_win() -> None:
    env = {
        "KGM_GPU_SOURCE": "simulated",
        "KGM_HOST_METRICS": "false",
        "KGM_SIMULATED_PROFILE": "constant:0.5",
    }
    config = parse_config([], env)
    assert (config.gpu_source, config.host_metrics) == ("simulated", False)
    assert config.simulated_profiles == (Constant(0.5),)
    config = parse_config(["--gpu-source", "none", "--simulated-profile", "constant:0.1"], env)
    assert config.gpu_source == "none"
    assert config.simulated_profiles == (Constant(0.1),)


def test_bad_env_values_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_config([], {"KGM_GPU_SOURCE": "cuda"})
    assert exit_info.value.code == 2
    assert "KGM_GPU_SOURCE='cuda'" in capsys.readouterr().err


def test_bad_profile_flag_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_config(["--simulated-profile", "sine:min=0.9,max=0.1,period=5"], {})
    assert "above max" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9402", ListenAddress("127.0.0.1", 9402)),
        (":9402", ListenAddress("0.0.0.0", 9402)),
        ("[::1]:6443", ListenAddress("::1", 6443)),
        ("localhost:0", ListenAddress("localhost", 0)),
    ],
)
def test_listen_addresses(text: str, expected: ListenAddress) -> None:
    assert parse_listen_address(text) == expected


@pytest.mark.parametrize("text", ["9402", "::1:80", "[::1]", "host:http", "host:70000", "[]:80"])
def test_bad_listen_addresses(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_listen_address(text)


@given(st.text())
def test_listen_parser_never_raises_anything_else(text: str) -> None:
    try:
        address = parse_listen_address(text)
    except argparse.ArgumentTypeError:
        return
    assert 0 <= address.port <= 65535
    assert parse_listen_address(str(address)) == address


@given(st.sampled_from(["true", "TRUE", " yes", "1", "on"]))
def test_truthy(text: str) -> None:
    assert parse_bool(text) is True


@given(st.text())
def test_parse_bool_is_strict(text: str) -> None:
    try:
        value = parse_bool(text)
    except argparse.ArgumentTypeError:
        return
    assert text.strip().lower() in {"1", "true", "yes", "on", "0", "false", "no", "off"}
    assert isinstance(value, bool)
