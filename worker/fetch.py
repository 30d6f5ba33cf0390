"""Fetch a user-submitted article URL without letting it reach the worker's own network (SSRF).

The URL is untrusted, and so is every redirect it leads to. Each hop goes through `check_url`:
the rules of `kernel.addresses` (http(s) only, no userinfo, no `localhost`, a numeric host must
be a public unicast address), and then every address a host name resolves to must pass the same
address rules. `allow_private` (tests only) opens loopback and private ranges, never cloud
metadata, unspecified, multicast, link-local or reserved addresses.

DNS rebinding: the address we check is the address we connect to. Each hop's request is sent to
the checked IP itself (`http://93.184.216.34:8080/path`) with the original `Host` header and, for
https, `extensions={"sni_hostname": host}` so httpcore uses the real host name for SNI *and* for
certificate verification (`ssl` checks the certificate against `server_hostname`). Nothing
resolves the name a second time. Every hop gets its own client with `trust_env=False` (an
environment proxy would make the connection somewhere else) and no connection reuse, so a
connection validated for one host name is never reused for another.

Time: one deadline covers DNS, every hop and the body. Each request's timeout is the time left,
and a per-hop watchdog shuts the socket down at the deadline (see `_Watchdog`), because httpx
timeouts bound single socket operations, not a response that trickles in.

Size: Content-Length over the cap fails at once; otherwise the body is streamed and reading stops
as soon as it passes `max_bytes`. We ask for `Accept-Encoding: identity`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

from kernel.addresses import IPAddress, URLNotAllowed, address_problem, vet_url
from worker.errors import PipelineError


@dataclass(frozen=True)
class FetchPolicy:
    timeout: float = 10.0  # total seconds for the whole fetch incl. redirects
    max_bytes: int = 5_000_000  # body cap; stop reading past it
    max_redirects: int = 5
    allowed_content_types: tuple[str, ...] = ("text/html", "application/xhtml+xml", "text/plain")
    allow_private: bool = False  # tests only: allow loopback/private targets
    user_agent: str = "evenhand/0.1 (+article summarizer)"


@dataclass(frozen=True)
class Fetched:
    url: str  # final URL after redirects
    content_type: str  # e.g. "text/html"
    text: str  # decoded body


_REDIRECT_STATUSES = (301, 302, 303, 307, 308)


@dataclass(frozen=True)
class _Target:
    url: httpx.URL  # the URL as the user/redirect gave it (host name kept)
    host: str  # ASCII host (IDNA), as in the URL
    address: IPAddress  # checked address we will connect to
    host_is_literal: bool  # the host *is* an address (any numeric encoding)


def check_url(url: str, policy: FetchPolicy) -> None:
    """Raise PipelineError unless `url` may be fetched: scheme, userinfo, host, and every
    address the host resolves to. The only network I/O is DNS resolution."""
    _vet(url, policy, time.monotonic() + policy.timeout)


def fetch_article(url: str, policy: FetchPolicy) -> Fetched:
    """GET `url` within `policy`, following up to `policy.max_redirects` redirects by hand, each
    hop re-checked by `check_url`'s rules and pinned to the address that was checked."""
    deadline = time.monotonic() + policy.timeout
    current: str | httpx.URL = url
    for hop in range(policy.max_redirects + 1):
        target = _vet(current, policy, deadline)
        outcome = _hop(target, policy, deadline)
        if isinstance(outcome, Fetched):
            return outcome
        if hop >= policy.max_redirects:
            raise PipelineError(
                "fetch_too_many_redirects", f"more than {policy.max_redirects} redirects"
            )
        current = outcome
    raise AssertionError("unreachable")  # pragma: no cover


# --- URL and address checks ---------------------------------------------------------------


def _vet(url: str | httpx.URL, policy: FetchPolicy, deadline: float) -> _Target:
    try:
        vetted = vet_url(url, allow_private=policy.allow_private)
    except URLNotAllowed as exc:
        raise PipelineError("url_not_allowed", str(exc)) from exc
    if vetted.address is not None:
        return _Target(vetted.url, vetted.host, vetted.address, host_is_literal=True)
    port = vetted.url.port or (443 if vetted.url.scheme == "https" else 80)
    addresses = _resolve(vetted.host, port, deadline)
    for address in addresses:
        problem = address_problem(address, policy.allow_private)
        if problem is not None:
            raise PipelineError("url_not_allowed", f"host {vetted.host!r} resolves to {problem}")
    return _Target(vetted.url, vetted.host, addresses[0], host_is_literal=False)


def _resolve(host: str, port: int, deadline: float) -> list[IPAddress]:
    """getaddrinfo, bounded by the deadline (it runs in a daemon thread because a stuck resolver
    cannot be interrupted)."""
    outcome: dict[str, Any] = {}

    def lookup() -> None:
        try:
            outcome["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except Exception as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=lookup, name="evenhand-dns", daemon=True)
    worker.start()
    worker.join(max(0.0, deadline - time.monotonic()))
    if worker.is_alive():
        raise PipelineError("fetch_timeout", f"DNS lookup for {host!r} timed out")
    if "error" in outcome:
        raise PipelineError("url_unresolvable", f"could not resolve host {host!r}") from outcome[
            "error"
        ]
    addresses: list[IPAddress] = []
    for family, *_, sockaddr in outcome["infos"]:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        text = str(sockaddr[0]).split("%", 1)[0]
        try:
            address = ipaddress.ip_address(text)
        except ValueError as exc:
            raise PipelineError(
                "url_not_allowed", f"host {host!r} resolves to a bad address"
            ) from exc
        if family == socket.AF_INET6 and sockaddr[3]:
            raise PipelineError("url_not_allowed", f"host {host!r} resolves to a scoped address")
        addresses.append(address)
    if not addresses:
        raise PipelineError("url_unresolvable", f"host {host!r} has no IP address")
    return addresses


# --- HTTP -----------------------------------------------------------------------------------


def _hop(target: _Target, policy: FetchPolicy, deadline: float) -> Fetched | httpx.URL:
    """One request: the page, or the URL a redirect points to (not yet checked)."""
    with _client(policy) as client:
        watchdog = _Watchdog(deadline)
        response: httpx.Response | None = None
        try:
            response = _send(client, target, policy, deadline, watchdog)
            status = response.status_code
            if status in _REDIRECT_STATUSES:
                location = response.headers.get("location")
                if not location:
                    raise PipelineError(
                        "fetch_failed", f"HTTP {status} redirect without a Location header"
                    )
                try:
                    return target.url.join(location)
                except httpx.InvalidURL as exc:
                    raise PipelineError("url_not_allowed", "redirect to a malformed URL") from exc
            if not 200 <= status < 300:
                raise PipelineError("fetch_failed", f"the server answered HTTP {status}")
            media_type, charset = _parse_content_type(response.headers.get("content-type"))
            if media_type not in policy.allowed_content_types:
                shown = (media_type or "none")[:100]
                raise PipelineError("fetch_unsupported_type", f"unsupported content type: {shown}")
            body = _read_body(response, policy, deadline, watchdog)
        finally:
            watchdog.stop()
            if response is not None:
                response.close()
    return Fetched(url=str(target.url), content_type=media_type, text=_decode(body, charset))


class _Watchdog:
    """Ends a hop at the deadline, whatever it is waiting for.

    httpx timeouts bound each socket operation, not their sum: a server that drips a byte now
    and then would keep a read going for ever. So at the deadline a timer shuts the connection's
    socket down, which wakes any blocked read or write; the hop then fails and is reported as a
    timeout. The socket comes from httpcore's documented `trace` extension (the stream returned
    by `connect_tcp`). We keep a dup of it: shutdown() acts on the connection behind every
    descriptor (so it works during and after the TLS handshake too), and our own descriptor
    can never be reused by an unrelated socket before `stop()` closes it. The connect itself is
    bounded by the connect timeout, which is the time left."""

    def __init__(self, deadline: float) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._stopped = False
        self.fired = False
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def trace(self, event: str, info: dict[str, Any]) -> None:
        if event != "connection.connect_tcp.complete":
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if not isinstance(sock, socket.socket):
            return
        with self._lock:
            if self._stopped or self._sock is not None:
                return
            self._sock = sock.dup()
            if self.fired:
                self._shutdown()

    def _fire(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self.fired = True
            self._shutdown()

    def _shutdown(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        self._timer.cancel()
        with self._lock:
            self._stopped = True
            if self._sock is not None:
                self._sock.close()
                self._sock = None


def _client(policy: FetchPolicy) -> httpx.Client:
    return httpx.Client(
        follow_redirects=False,
        trust_env=False,  # no environment proxies: we connect to the checked address ourselves
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=0),
        headers={"user-agent": policy.user_agent},
    )


def _timed_out(policy: FetchPolicy) -> PipelineError:
    return PipelineError("fetch_timeout", f"the fetch took longer than {policy.timeout:g}s")


def _send(
    client: httpx.Client,
    target: _Target,
    policy: FetchPolicy,
    deadline: float,
    watchdog: _Watchdog,
) -> httpx.Response:
    left = deadline - time.monotonic()
    if left <= 0:
        raise _timed_out(policy)
    # Pinning (see module docstring): the request goes to the checked IP; the Host header and
    # TLS (SNI and certificate verification) carry the name. Path and query are unchanged.
    pinned = target.url.copy_with(host=str(target.address), fragment=None)
    extensions: dict[str, Any] = {"trace": watchdog.trace}
    if target.url.scheme == "https" and not target.host_is_literal:
        extensions["sni_hostname"] = target.host.rstrip(".")
    request = client.build_request(
        "GET",
        pinned,
        headers={
            "host": target.url.netloc.decode("ascii"),
            "accept": ", ".join(policy.allowed_content_types) + ";q=0.9, */*;q=0.1",
            "accept-encoding": "identity",
        },
        timeout=httpx.Timeout(left),
        extensions=extensions,
    )
    try:
        return client.send(request, stream=True)
    except httpx.HTTPError as exc:
        raise _transport_error(exc, policy, deadline, watchdog) from exc


def _read_body(
    response: httpx.Response, policy: FetchPolicy, deadline: float, watchdog: _Watchdog
) -> bytes:
    too_large = PipelineError(
        "fetch_too_large", f"the page is larger than {policy.max_bytes} bytes"
    )
    declared = response.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > policy.max_bytes:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_bytes():  # as the network delivers it, not re-buffered
            size += len(chunk)
            if size > policy.max_bytes:
                raise too_large
            chunks.append(chunk)
            if time.monotonic() >= deadline:
                raise _timed_out(policy)
    except httpx.HTTPError as exc:
        raise _transport_error(exc, policy, deadline, watchdog) from exc
    if watchdog.fired:  # a body that ends at connection close looks complete after shutdown
        raise _timed_out(policy)
    return b"".join(chunks)


def _transport_error(
    exc: httpx.HTTPError, policy: FetchPolicy, deadline: float, watchdog: _Watchdog
) -> PipelineError:
    if isinstance(exc, httpx.TimeoutException) or watchdog.fired or time.monotonic() >= deadline:
        return _timed_out(policy)
    if isinstance(exc, httpx.ConnectError):
        if _caused_by_tls(exc):
            return PipelineError("fetch_failed", "TLS error while connecting to the server")
        return PipelineError("fetch_failed", "could not connect to the server")
    if isinstance(exc, httpx.DecodingError):
        return PipelineError("fetch_failed", "the response body could not be decoded")
    return PipelineError("fetch_failed", f"the connection failed ({type(exc).__name__})")


def _caused_by_tls(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


# --- Decoding -------------------------------------------------------------------------------


def _parse_content_type(header: str | None) -> tuple[str, str | None]:
    if not header:
        return "", None
    media_type, *params = header.split(";")
    charset = None
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip("\"'") or None
    return media_type.strip().lower(), charset


def _decode(body: bytes, charset: str | None) -> str:
    if charset:
        try:
            return body.decode(charset, errors="replace")
        except LookupError:  # unknown charset, or a non-text codec such as "rot13"
            pass
    return body.decode("utf-8", errors="replace")
