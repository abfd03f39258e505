"""The SSRF guard: webhook URLs lead only to public addresses, however the address is spelled or resolved."""

from __future__ import annotations

import pytest

from services.webhooks.url_guard import MAX_URL_LENGTH, UrlRefused, check_url, resolve_allowed
from tests.webhooks.dns import fake_dns  # noqa: F401 - fixture


def refused(url: str, *, allow_private: bool = False, require_https: bool = False) -> str:
    with pytest.raises(UrlRefused) as caught:
        check_url(url, allow_private=allow_private, require_https=require_https)
    return str(caught.value)


@pytest.mark.parametrize("url, why", [
    ("http://127.0.0.1/hook", "loopback"),
    ("http://127.8.9.10:8080/", "loopback"),
    ("http://localhost/", "loopback"),
    ("http://10.1.2.3/", "private"),
    ("http://172.16.0.9/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://100.64.0.1/", "carrier-grade NAT"),
    ("http://169.254.10.20/", "link-local"),
    ("http://169.254.169.254/latest/meta-data/", "metadata"),
    ("http://169.254.170.2/v2/credentials", "metadata"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://224.0.0.1/", "multicast"),
    ("http://240.0.0.1/", "reserved"),
    ("http://[::1]/", "loopback"),
    ("http://[::]/", "unspecified"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fc00::5]/", "private"),
    ("http://[fd00:ec2::254]/", "metadata"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),
    ("http://[::ffff:169.254.169.254]/", "metadata"),
    ("http://[::ffff:a00:1]/", "private"),
    ("http://[64:ff9b::a9fe:a9fe]/", "metadata"),
    ("http://[2002:c0a8:101::1]/", "private"),
])
def test_internal_addresses_are_refused_naming_what_they_are(fake_dns, url, why):
    fake_dns.names["localhost"] = ["127.0.0.1", "::1"]
    message = refused(url)
    assert why in message and "public internet addresses" in message


@pytest.mark.parametrize("url", [
    "http://2130706433/",  # 127.0.0.1 as one decimal number
    "http://0x7f000001/",
    "http://0177.0.0.1/",  # octal
    "http://0x7f.0.0.1/",
    "http://127.1/",
    "http://0/",
    "http://017700000001/",
    "http://3232235777/",  # 192.168.1.1
    "http://0xa9.0xfe.0xa9.0xfe/",  # 169.254.169.254
])
def test_numeric_spellings_of_internal_ipv4_addresses_are_refused(fake_dns, url):
    assert "public internet addresses" in refused(url)
    assert fake_dns.asked == [] or all(name[0].isdigit() for name in fake_dns.asked)


def test_a_numeric_spelling_of_a_public_address_is_written_out(fake_dns):
    assert check_url("http://134744072:8080/hook", allow_private=False, require_https=False) \
        == "http://8.8.8.8:8080/hook"


@pytest.mark.parametrize("url", ["http://256.1.1.1/", "http://08.0.0.1/", "http://1.2.3.4.5/", "http://host.123/"])
def test_malformed_numeric_hosts_are_refused(fake_dns, url):
    message = refused(url)
    assert "IPv4" in message


def test_host_names_resolving_to_internal_addresses_are_refused(fake_dns):
    fake_dns.names["rebind.attacker.example"] = ["93.184.216.34", "10.0.0.7"]
    fake_dns.names["metadata.attacker.example"] = ["::ffff:169.254.169.254"]
    assert "resolves to 10.0.0.7, a private network address" in refused("https://rebind.attacker.example/x")
    assert "metadata" in refused("https://metadata.attacker.example/x")


def test_resolve_allowed_checks_again_at_delivery_time(fake_dns):
    """DNS may change after creation: the sender resolves again and connects only to what is returned."""
    assert resolve_allowed("hooks.vendor.example", 443, allow_private=False) == ["93.184.216.34"]
    fake_dns.names["hooks.vendor.example"] = ["127.0.0.1"]
    with pytest.raises(UrlRefused, match="loopback"):
        resolve_allowed("hooks.vendor.example", 443, allow_private=False)
    assert resolve_allowed("hooks.vendor.example", 443, allow_private=True) == ["127.0.0.1"]


def test_a_host_that_does_not_resolve_is_refused(fake_dns):
    assert "does not resolve" in refused("https://nowhere.vendor.example/")


@pytest.mark.parametrize("url, why", [
    ("file:///etc/passwd", "not file:"),
    ("ftp://hooks.vendor.example/", "not ftp:"),
    ("gopher://hooks.vendor.example/", "not gopher:"),
    ("javascript:alert(1)", "not javascript:"),
    ("hooks.vendor.example/x", "Only http and https"),
    ("https://user:password@hooks.vendor.example/", "user name or password"),
    ("https://user@hooks.vendor.example/", "user name or password"),
    ("https://hooks.vendor.example\\@127.0.0.1/", "backslashes"),
    ("https://hooks.vendor.example/a b", "spaces"),
    ("https://hooks.vendor.example/\r\nX-Injected: 1", "control characters"),
    ("https:///path-only", "no host"),
    ("https://hooks.vendor.example:0/", "port"),
    ("https://hooks.vendor.example:99999/", "not a valid URL"),
    ("https://[::1/", "not a valid URL"),
    ("https://[fe80::1%25eth0]/", "must not contain %"),
    ("", "Enter the URL"),
])
def test_other_schemes_credentials_and_malformed_urls_are_refused(fake_dns, url, why):
    assert why in refused(url)


def test_overlong_urls_are_refused(fake_dns):
    url = "https://hooks.vendor.example/" + "a" * MAX_URL_LENGTH
    assert f"longer than {MAX_URL_LENGTH}" in refused(url)
    encoded_too_long = "https://hooks.vendor.example/" + "é" * (MAX_URL_LENGTH // 2)
    assert "longer than" in refused(encoded_too_long)


def test_unicode_host_names_are_idna_encoded_or_refused_with_the_reason(fake_dns):
    fake_dns.names["xn--bcher-kva.example"] = ["93.184.216.34"]
    assert check_url("https://Bücher.example/hook", allow_private=False, require_https=True) \
        == "https://xn--bcher-kva.example/hook"
    assert "xn--bcher-kva.example" in fake_dns.asked
    assert "cannot be used" in refused("https://☃.example/")
    assert "is not a valid host name" in refused("https://exa_mple-.example/")


def test_a_public_url_comes_back_normalized(fake_dns):
    assert check_url("HTTPS://Hooks.Vendor.Example:443/ecc?x=ü#top", allow_private=False, require_https=True) \
        == "https://hooks.vendor.example/ecc?x=%C3%BC"
    assert check_url("http://hooks.vendor.example:8080", allow_private=False, require_https=False) \
        == "http://hooks.vendor.example:8080/"


def test_https_is_required_when_asked(fake_dns):
    assert "must use https" in refused("http://hooks.vendor.example/", require_https=True)


def test_private_networks_are_allowed_for_local_receivers_but_metadata_never(fake_dns):
    for url in ("http://127.0.0.1:8080/hook", "http://10.0.0.2/", "http://[::1]:9000/", "http://2130706433/"):
        assert check_url(url, allow_private=True, require_https=False).startswith("http://")
    for url in ("http://169.254.169.254/", "http://[fd00:ec2::254]/", "http://0.0.0.0/"):
        assert "public internet addresses" in refused(url, allow_private=True)
