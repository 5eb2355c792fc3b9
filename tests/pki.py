"""Certificates for tests that speak TLS: trustme CAs, and the files servers and clients read them from."""

from __future__ import annotations

import itertools
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import trustme


@dataclass
class Pki:
    """A serving CA, a client CA and a front-proxy CA; what they issue is written under ``directory``."""

    directory: Path
    server_ca: trustme.CA
    client_ca: trustme.CA
    proxy_ca: trustme.CA
    # A name may be issued to more than once in a test, and each certificate keeps a file of its own.
    _serials: Iterator[int] = field(default_factory=itertools.count, init=False, repr=False)

    @classmethod
    def create(cls, directory: Path) -> Pki:
        return cls(directory, trustme.CA(), trustme.CA(), trustme.CA())

    def ca_file(self, ca: trustme.CA, name: str) -> Path:
        path = self.directory / f"{name}.pem"
        ca.cert_pem.write_to_path(str(path))
        return path

    def client_ca_file(self) -> Path:
        return self.ca_file(self.client_ca, "client-ca")

    def serving_pair(self) -> tuple[Path, Path]:
        """Certificate and key files for 127.0.0.1 and localhost, from the serving CA."""
        return self._write_pair(self.server_ca.issue_cert("127.0.0.1", "localhost"), "adapter")

    def serving_flags(self) -> list[str]:
        cert, key = self.serving_pair()
        return ["--tls-cert-file", str(cert), "--tls-private-key-file", str(key)]

    def serving_context(self) -> ssl.SSLContext:
        """A server-side TLS context with a certificate for 127.0.0.1 from the serving CA."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server_ca.issue_cert("127.0.0.1").configure_cert(context)
        return context

    def client_pair(
        self, ca: trustme.CA, common_name: str, organization: str | None = None
    ) -> tuple[Path, Path]:
        """Certificate and key files for the user ``common_name`` (in group ``organization``), from ``ca``."""
        return self._write_pair(
            self._client_leaf(ca, common_name, organization), self._client_name(common_name)
        )

    def client_file(self, ca: trustme.CA, common_name: str, organization: str | None = None) -> Path:
        """Like ``client_pair``, key and certificate in one file, as ``load_cert_chain`` takes them."""
        path = self.directory / f"{self._client_name(common_name)}.pem"
        self._client_leaf(ca, common_name, organization).private_key_and_cert_chain_pem.write_to_path(
            str(path)
        )
        return path

    def client_context(self, user: str | None = None, *, organization: str | None = None) -> ssl.SSLContext:
        """Trusts the serving CA; presents a certificate from the client CA for ``user`` when given."""
        context = ssl.create_default_context()
        self.server_ca.configure_trust(context)
        if user is not None:
            self._client_leaf(self.client_ca, user, organization).configure_cert(context)
        return context

    @staticmethod
    def _client_leaf(ca: trustme.CA, common_name: str, organization: str | None) -> trustme.LeafCert:
        return ca.issue_cert(
            f"{common_name}.example", common_name=common_name, organization_name=organization
        )

    def _client_name(self, common_name: str) -> str:
        return f"client-{common_name}-{next(self._serials)}"

    def _write_pair(self, leaf: trustme.LeafCert, name: str) -> tuple[Path, Path]:
        cert, key = self.directory / f"{name}.crt", self.directory / f"{name}.key"
        cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        leaf.private_key_pem.write_to_path(str(key))
        return cert, key
