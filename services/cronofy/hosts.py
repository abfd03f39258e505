"""Cronofy data centers and the connection settings of one upstream (§1 of docs/cronofy-api.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

DATA_CENTERS: dict[str, str] = {
    "us": "United States",
    "au": "Australia",
    "ca": "Canada",
    "de": "Germany",
    "sg": "Singapore",
    "uk": "United Kingdom",
}

DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 15.0


@dataclass(frozen=True)
class Upstream:
    """Where and as whom the client talks: base URLs, credentials and timeouts."""

    app_url: str
    api_url: str
    client_id: str
    client_secret: str = field(repr=False)
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT

    @property
    def timeout(self) -> tuple[float, float]:
        """Return the (connect, read) pair that requests expects."""
        return (self.connect_timeout, self.read_timeout)


def base_urls(data_center: str) -> tuple[str, str]:
    """Return the (app, api) base URLs of a data center code.

    :raises ValueError: for a code that is not one of ``DATA_CENTERS``.
    """
    code = _normalise(data_center)
    # §1: every SDK maps "us" to the un-suffixed hosts.
    if code == "us":
        return "https://app.cronofy.com", "https://api.cronofy.com"
    return f"https://app-{code}.cronofy.com", f"https://api-{code}.cronofy.com"


def upstream_for(
    data_center: str,
    *,
    client_id: str,
    client_secret: str,
    sandbox_url: str | None = None,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
) -> Upstream:
    """Build the Upstream of a data center, or of the sandbox when its URL is given.

    :raises ValueError: for an unknown data center (checked even with a sandbox,
        so a configuration error shows up before going live).
    """
    app_url, api_url = base_urls(data_center)
    if sandbox_url:
        # The sandbox serves both the browser pages and the API from one origin.
        app_url = api_url = sandbox_url.rstrip("/")
    return Upstream(
        app_url=app_url,
        api_url=api_url,
        client_id=client_id,
        client_secret=client_secret,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )


def _normalise(data_center: str) -> str:
    code = (data_center or "").strip().lower()
    if code not in DATA_CENTERS:
        known = ", ".join(DATA_CENTERS)
        raise ValueError(f"Unknown Cronofy data center {data_center!r}; expected one of: {known}")
    return code
