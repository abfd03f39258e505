"""A fake DNS for webhook tests: names resolve to the addresses a test chooses, never through the network."""

from __future__ import annotations

import ipaddress
import socket

import pytest


class FakeDns:
    """Answers socket.getaddrinfo for the names it was given; address literals resolve to themselves."""

    def __init__(self, real):
        self._real, self.names, self.asked = real, {}, []

    def __call__(self, host, port, family=0, type=0, proto=0, flags=0):
        self.asked.append(host)
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if host not in self.names:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
            return [self._answer(address, port) for address in self.names[host]]
        return self._real(host, port, family, type, proto, flags)

    @staticmethod
    def _answer(address, port):
        if ipaddress.ip_address(address).version == 6:
            return socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port, 0, 0)
        return socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port)


@pytest.fixture
def fake_dns(monkeypatch):
    """`fake_dns.names["hooks.vendor.example"] = ["93.184.216.34"]` makes that name resolve there."""
    dns = FakeDns(socket.getaddrinfo)
    dns.names["hooks.vendor.example"] = ["93.184.216.34"]
    monkeypatch.setattr(socket, "getaddrinfo", dns)
    return dns
