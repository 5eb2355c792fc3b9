"""Parsing of ``HOST:PORT`` listen addresses, IPv6 in brackets included."""

from __future__ import annotations

import argparse
from dataclasses import dataclass


@dataclass(frozen=True)
class ListenAddress:
    """Where a server listens; ``host`` is unbracketed (``::`` rather than ``[::]``)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_listen_address(text: str) -> ListenAddress:
    """Parse ``HOST:PORT``, ``:PORT`` (all interfaces) or ``[IPV6]:PORT``."""
    value = text.strip()
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or not rest.startswith(":") or not host:
            raise argparse.ArgumentTypeError(f"bad listen address {text!r}: expected [IPV6]:PORT")
        port_text = rest[1:]
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep:
            raise argparse.ArgumentTypeError(f"bad listen address {text!r}: expected HOST:PORT")
        if ":" in host:
            raise argparse.ArgumentTypeError(f"bad listen address {text!r}: put IPv6 hosts in brackets")
        host = host or "0.0.0.0"
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise argparse.ArgumentTypeError(f"bad listen address {text!r}: port must be 0-65535")
    return ListenAddress(host=host, port=int(port_text))
