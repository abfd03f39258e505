"""The SSRF guard: webhook URLs may only lead to public addresses, checked at creation and at each delivery.

A webhook makes the console send requests to an address the vendor types in, from inside the
console's network. Without a guard that address could be the cloud's metadata service (credentials),
a database port on the private network, or the console itself. So an endpoint's URL is refused when
its host is, or resolves to, a loopback, private, link-local, shared (CGNAT), multicast, reserved or
metadata address; and because DNS can change between creation and delivery (DNS rebinding), the
sender resolves the host again with `resolve_allowed` and connects only to the addresses it returns.

`allow_private` (WEBHOOK_ALLOW_PRIVATE_NETWORKS, set in development and tests) admits loopback and
private networks for local receivers; metadata, unspecified and multicast addresses stay refused,
because no receiver lives there. Hosts are checked the way a browser's URL parser reads them:
numeric IPv4 forms (`2130706433`, `0x7f.1`, `0177.0.0.1`) are IPv4 addresses, IPv6 forms embedding
an IPv4 address are judged by that address, unicode host names are IDNA-encoded (or refused, with why).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import quote, urlsplit, urlunsplit

import idna

MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean
    "169.254.170.2",  # AWS ECS task credentials
    "fd00:ec2::254",  # AWS over IPv6
    "100.100.100.200",  # Alibaba Cloud
))
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT, RFC 6598
NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_NUMERIC_PART = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")
_UNSAFE_CHARACTERS = re.compile(r"[\x00-\x20\x7f\\]")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class UrlRefused(ValueError):
    """The URL may not receive webhooks; the message says why, in words fit to show the vendor."""


def check_url(url: str, *, allow_private: bool, require_https: bool) -> str:
    """Return url normalized (lower-case scheme and host, IDNA, no fragment) if webhooks may go there.

    Resolves the host through DNS: every address it resolves to must be allowed.
    :raises UrlRefused: the URL is malformed, of another scheme, carries credentials, or leads to a
        refused address.
    """
    url = (url or "").strip()
    if not url:
        raise UrlRefused("Enter the URL that should receive the webhooks.")
    if len(url) > MAX_URL_LENGTH:
        raise UrlRefused(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    if _UNSAFE_CHARACTERS.search(url):
        raise UrlRefused("The URL contains spaces, backslashes or control characters.")
    parts = _split(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise UrlRefused(f"Only http and https URLs can receive webhooks, not {scheme or 'this'}: URLs.")
    if require_https and scheme != "https":
        raise UrlRefused("Webhook URLs must use https.")
    if "@" in parts.netloc:
        raise UrlRefused("The URL must not contain a user name or password; authenticate receivers with the "
                         "signature instead.")
    host, literal = _host(parts)
    port = _port(parts, scheme)
    if literal is not None:
        _refuse_address(literal, allow_private, shown=parts.hostname)
    resolve_allowed(host.strip("[]"), port, allow_private=allow_private)
    netloc = host if port == DEFAULT_PORTS[scheme] else f"{host}:{port}"
    normalized = urlunsplit((scheme, netloc, _encoded(parts.path) or "/", _encoded(parts.query), ""))
    if len(normalized) > MAX_URL_LENGTH:
        raise UrlRefused(f"The URL is longer than {MAX_URL_LENGTH} characters once encoded.")
    return normalized


def resolve_allowed(host: str, port: int, *, allow_private: bool) -> list[str]:
    """Return the addresses to connect to for host:port; refuse if any of them is not allowed.

    Any refused address refuses the whole host: connecting only to the allowed ones would still let a
    name that mixes public and private answers reach the private one on another resolution.
    :raises UrlRefused: the host does not resolve, or resolves to a refused address.
    """
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise UrlRefused(f"The host {host} does not resolve: check the address.") from exc
    addresses: list[str] = []
    for _family, _type, _proto, _name, sockaddr in answers:
        text = str(sockaddr[0]).split("%", 1)[0]
        if text in addresses:
            continue
        _refuse_address(ipaddress.ip_address(text), allow_private, shown=host)
        addresses.append(text)
    if not addresses:
        raise UrlRefused(f"The host {host} does not resolve: check the address.")
    return addresses


def refusal(address: Address, *, allow_private: bool) -> str | None:
    """Return why webhooks may not go to address (words such as "a private network address"), or None."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return refusal(embedded, allow_private=allow_private)
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_multicast or address == ipaddress.IPv4Address("255.255.255.255"):
        return "a multicast or broadcast address"
    if allow_private:
        return None
    for kind, test in (("a loopback address", address.is_loopback), ("a link-local address", address.is_link_local),
                       ("a shared (carrier-grade NAT) address", address in SHARED_ADDRESS_SPACE),
                       ("a reserved address", address.is_reserved), ("a private network address", address.is_private)):
        if test:
            return kind
    return None if address.is_global else "not a public address"


def _embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, NAT64, 6to4), which is where it leads."""
    if address.version != 6:
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def _refuse_address(address: Address, allow_private: bool, *, shown: str) -> None:
    why = refusal(address, allow_private=allow_private)
    if why is None:
        return
    where = f"{shown} is" if shown.strip("[]") == str(address) else f"{shown} resolves to {address},"
    raise UrlRefused(f"{where} {why}: webhooks are sent only to public internet addresses.")


def _split(url: str):
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError as exc:
        raise UrlRefused("This is not a valid URL (check the host and the port).") from exc
    return parts


def _port(parts, scheme: str) -> int:
    port = parts.port
    if port == 0:
        raise UrlRefused("The URL's port must be between 1 and 65535.")
    return port or DEFAULT_PORTS[scheme]


def _host(parts) -> tuple[str, Address | None]:
    """Return the host as it goes into the URL, and the address when it is an address literal."""
    raw = parts.hostname or ""
    if not raw:
        raise UrlRefused("The URL has no host.")
    if "%" in raw:
        raise UrlRefused("The URL's host must not contain % (IPv6 zone ids and encoded names are not accepted).")
    if "[" in parts.netloc:
        try:
            address = ipaddress.IPv6Address(raw)
        except ValueError as exc:
            raise UrlRefused("The URL's IPv6 address is not valid.") from exc
        return f"[{address.compressed}]", address
    name = _idna(raw.rstrip("."))
    labels = name.split(".")
    if all(_NUMERIC_PART.match(label) for label in labels):
        address = _numeric_ipv4(labels)
        return str(address), address
    if _NUMERIC_PART.match(labels[-1]):
        raise UrlRefused(f"The host {name} is neither a name nor an IPv4 address (it ends in a number).")
    if len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise UrlRefused(f"The host {name} is not a valid host name.")
    return name, None


def _idna(host: str) -> str:
    """A host name in ASCII: unicode names are encoded as IDNA 2008 (UTS 46), or refused with the reason."""
    if host.isascii():
        return host.lower()
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise UrlRefused(f"The host name {host} cannot be used: {exc}.") from exc


def _numeric_ipv4(parts: list[str]) -> ipaddress.IPv4Address:
    """Read an IPv4 address as browsers and inet_aton do: 1 to 4 parts, each decimal, octal (0…) or hex (0x…)."""
    if not 1 <= len(parts) <= 4:
        raise UrlRefused("The host is not a valid IPv4 address.")
    try:
        numbers = [int(p, 16) if p.startswith("0x") else int(p, 8) if len(p) > 1 and p.startswith("0") else int(p)
                   for p in (part if part != "0x" else "0x0" for part in parts)]
    except ValueError as exc:
        raise UrlRefused("The host is not a valid IPv4 address.") from exc
    *leading, last = numbers
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(numbers)):
        raise UrlRefused("The host is not a valid IPv4 address.")
    value = last
    for index, number in enumerate(leading):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _encoded(text: str) -> str:
    """Percent-encode what is not plain ASCII in a path or query; what is already encoded stays as it is."""
    return quote(text, safe="/%:@!$&'()*+,;=-._~?[]")
