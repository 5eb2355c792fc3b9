"""Adapter options, their environment twins, the wiring they select and the TLS material they lead to."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from cryptography import x509

from adapter.backends.direct import DirectBackend
from adapter.cli import StartError, _check, write_local_kubeconfig
from adapter.config import AdapterConfig, parse_config
from adapter.objects.static import StaticResolver
from adapter.tls import self_signed_pair, server_context
from adapter.wiring import WiringError, build_components
from kgm_common.addresses import ListenAddress


def test_defaults() -> None:
    config = parse_config([], environ={})
    assert config == AdapterConfig(listen=ListenAddress("0.0.0.0", 6443))


def test_insecure_local_defaults_to_loopback() -> None:
    assert parse_config(["--insecure-local"], environ={}).listen == ListenAddress("127.0.0.1", 6443)
    assert parse_config(["--insecure-local=false"], environ={}).insecure_local is False


def test_flags_have_environment_twins() -> None:
    config = parse_config(
        [],
        environ={
            "KGM_LISTEN": "127.0.0.1:9443",
            "KGM_EXPORTER_URL": "http://a:9402,http://b:9402",
            "KGM_INSECURE_LOCAL": "true",
            "KGM_REQUESTHEADER_ALLOWED_NAMES": "front-proxy-client, aggregator",
            "KGM_CLIENT_CA_FILE": "/etc/ca.pem",
            "KGM_LOG_LEVEL": "debug",
        },
    )
    assert config.listen == ListenAddress("127.0.0.1", 9443)
    assert config.exporter_urls == ("http://a:9402", "http://b:9402")
    assert config.insecure_local is True
    assert config.requestheader_allowed_names == ("front-proxy-client", "aggregator")
    assert config.client_ca_file == Path("/etc/ca.pem")
    assert config.log_level == "debug"


def test_flags_override_environment() -> None:
    config = parse_config(["--exporter-url", "http://c:1", "--exporter-url", "http://d:2"], environ={})
    assert config.exporter_urls == ("http://c:1", "http://d:2")


FLAGS = (
    "--listen",
    "--backend",
    "--exporter-url",
    "--prometheus-url",
    "--tls-cert-file",
    "--tls-private-key-file",
    "--kubeconfig",
    "--config",
    "--insecure-local",
    "--requestheader-client-ca-file",
    "--requestheader-allowed-names",
    "--client-ca-file",
    "--log-level",
    "--log-format",
)


def test_help_names_every_flag_and_its_twin(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_config(["--help"], environ={})
    text = capsys.readouterr().out
    for flag in FLAGS:
        assert flag in text
        assert "KGM_" + flag.lstrip("-").replace("-", "_").upper() in text


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (AdapterConfig(listen=ListenAddress("0.0.0.0", 1), insecure_local=True), "only on loopback"),
        (AdapterConfig(listen=ListenAddress("10.0.0.1", 1), insecure_local=True), "only on loopback"),
        (AdapterConfig(listen=ListenAddress("0.0.0.0", 1), tls_cert_file=Path("c")), "go together"),
    ],
)
def test_option_conflicts(config: AdapterConfig, message: str) -> None:
    with pytest.raises(StartError, match=message):
        _check(config)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_insecure_local_accepts_loopback(host: str) -> None:
    _check(AdapterConfig(listen=ListenAddress(host, 1), insecure_local=True))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (AdapterConfig(listen=ListenAddress("::1", 1), backend="prometheus"), "needs --prometheus-url"),
        (
            AdapterConfig(
                listen=ListenAddress("::1", 1), exporter_urls=("http://a:1",), config_file=Path("r")
            ),
            "rules",
        ),
        (AdapterConfig(listen=ListenAddress("::1", 1)), "pass --exporter-url"),
    ],
)
def test_wiring_errors(config: AdapterConfig, message: str) -> None:
    with pytest.raises(WiringError, match=message):
        build_components(config, None)


def test_static_wiring_outside_a_cluster() -> None:
    backend, resolver = build_components(
        AdapterConfig(listen=ListenAddress("::1", 1), exporter_urls=("http://127.0.0.1:9402",)), None
    )
    assert isinstance(backend, DirectBackend)
    assert isinstance(resolver, StaticResolver)


def test_self_signed_pair_serves_tls_1_2_and_up(tmp_path: Path) -> None:
    pair = self_signed_pair(tmp_path, ["adapter.example"])
    assert pair.key_file.stat().st_mode & 0o777 == 0o600
    certificate = x509.load_pem_x509_certificate(pair.cert_file.read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "adapter.example" in names.get_values_for_type(x509.DNSName)
    context = server_context(pair)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_NONE
    with_clients = server_context(pair, [certificate])
    assert with_clients.verify_mode == ssl.CERT_OPTIONAL


def test_local_kubeconfig_points_at_loopback(tmp_path: Path) -> None:
    pair = self_signed_pair(tmp_path)
    config = AdapterConfig(listen=ListenAddress("::1", 7443), insecure_local=True)
    text = write_local_kubeconfig(tmp_path / "kubeconfig", config, pair).read_text()
    assert '"server": "https://[::1]:7443"' in text
    assert str(pair.cert_file) in text
