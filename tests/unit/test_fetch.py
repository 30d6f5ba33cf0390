"""SSRF-guarded article fetching, against real loopback HTTP(S) servers.

No test resolves a name through real DNS or opens a connection to a non-loopback address: an
autouse fixture replaces `socket.getaddrinfo` with a table (numeric hosts pass through) and makes
`socket.create_connection` fail the test for any non-loopback target. Refused URLs must therefore
be refused before any connection, or the guard reports them.
"""

from __future__ import annotations

import contextlib
import ipaddress
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernel.addresses import URLNotAllowed, vet_url
from worker.errors import PipelineError
from worker.fetch import Fetched, FetchPolicy, check_url, fetch_article

DEFAULT = FetchPolicy()
LOCAL = FetchPolicy(allow_private=True, timeout=5.0)
PAGE = "<html><body><p>Grüße, world</p></body></html>"
SIX_MB = 6_000_000


# --- guards: fake DNS, loopback-only connections --------------------------------------------


@dataclass
class Net:
    dns: dict[str, list[list[str]]] = field(default_factory=dict)  # host -> answers, in turn
    lookups: list[str] = field(default_factory=list)
    connects: list[tuple[str, int]] = field(default_factory=list)


@pytest.fixture(autouse=True)
def net(monkeypatch: pytest.MonkeyPatch) -> Net:
    state = Net()
    real_getaddrinfo = socket.getaddrinfo
    real_create_connection = socket.create_connection

    def fake_getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        try:  # numeric hosts: the real thing, which then does no network I/O
            return real_getaddrinfo(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)
        except socket.gaierror:
            pass
        name = host.decode() if isinstance(host, bytes) else str(host)
        state.lookups.append(name)
        answers = state.dns.get(name)
        if not answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        current = answers[0] if len(answers) == 1 else answers.pop(0)
        infos = []
        for address in current:
            if ":" in address:
                infos.append(
                    (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, int(port or 0), 0, 0))
                )
            else:
                infos.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port or 0))))
        return infos

    def guarded_create_connection(address, *args, **kwargs):
        host, port = address[0], address[1]
        state.connects.append((host, port))
        if not ipaddress.ip_address(host).is_loopback:
            raise AssertionError(f"test tried to connect to non-loopback {host}")
        return real_create_connection(address, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    monkeypatch.setattr(socket, "create_connection", guarded_create_connection)
    return state


# --- a loopback server --------------------------------------------------------------------


class Server:
    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.stop = threading.Event()
        self.requests: list[tuple[str, str]] = []  # (path, Host header)
        self.connections = 0
        self.sni: list[str | None] = []
        outer = self

        class Handler(Routes):
            server_state = outer

        class CountingServer(ThreadingHTTPServer):
            daemon_threads = True

            def verify_request(self, request, client_address) -> bool:
                outer.connections += 1
                return True

        self.httpd = CountingServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            tls.sni_callback = lambda _sock, name, _ctx: self.sni.append(name)
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.base = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
        assert not self.thread.is_alive()

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]


class Routes(BaseHTTPRequestHandler):
    server_state: Server
    timeout = 5  # socket timeout for every handler: no handler thread outlives a test by much

    def log_message(self, format, *args) -> None:  # quiet
        pass

    def send(self, status: int, body: bytes, content_type: str | None, length: bool = True):
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def redirect(self, location: str, status: int = 302) -> None:
        self.send_response(status)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        state = self.server_state
        state.requests.append((self.path, self.headers.get("Host", "")))
        path = self.path.split("?", 1)[0]
        # the client may hang up on purpose (too large, timeout)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, TimeoutError, ssl.SSLError):
            self.route(path, state)

    def route(self, path: str, state: Server) -> None:
        if path == "/page":
            self.send(200, PAGE.encode(), "text/html; charset=utf-8")
        elif path == "/latin":
            self.send(200, "café".encode("latin-1"), 'text/plain; charset="ISO-8859-1"')
        elif path == "/nocharset":
            self.send(200, b"ok \xff\xfe done", "text/html")
        elif path == "/bogus-charset":
            self.send(200, b"plain", "text/html; charset=no-such-charset")
        elif path == "/xhtml":
            self.send(200, b"<html/>", "application/xhtml+xml")
        elif path == "/echo-ua":
            self.send(200, self.headers.get("User-Agent", "").encode(), "text/plain")
        elif path == "/echo-host":
            self.send(200, self.headers.get("Host", "").encode(), "text/plain")
        elif path.startswith("/redirect/"):
            left = int(path.rsplit("/", 1)[1])
            self.redirect(f"/redirect/{left - 1}" if left > 1 else "/page")
        elif path == "/absolute-redirect":
            self.redirect(f"http://127.0.0.1:{state.port}/page", status=301)
        elif path == "/relative-redirect/a/b":
            self.redirect("../../page", status=307)
        elif path == "/to-metadata":
            self.redirect("http://169.254.169.254/latest/meta-data/")
        elif path == "/to-localhost":
            self.redirect(f"http://localhost:{state.port}/page")
        elif path == "/to-unspecified":
            self.redirect(f"http://0:{state.port}/page")
        elif path == "/to-reserved-decimal":
            self.redirect("http://4026531841/")  # 240.0.0.1
        elif path == "/to-link-local":
            self.redirect("http://[fe80::1]/")
        elif path == "/to-file":
            self.redirect("file:///etc/passwd")
        elif path == "/no-location":
            self.send(302, b"", None)
        elif path == "/loop":
            self.redirect("/loop")
        elif path == "/big":
            self.send(200, b"a" * SIX_MB, "text/html")
        elif path == "/big-unsized":  # HTTP/1.0: no Content-Length, body ends at close
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            chunk = b"b" * 65536
            for _ in range(SIX_MB // len(chunk) + 1):
                self.wfile.write(chunk)
        elif path == "/image":
            self.send(200, b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "image/png")
        elif path == "/no-type":
            self.send(200, b"what am I", None)
        elif path == "/missing":
            self.send(404, b"SECRET-BODY not here", "text/html")
        elif path == "/broken":
            self.send(500, b"SECRET-BODY stack trace", "text/plain")
        elif path == "/slow":
            state.stop.wait(5)
            self.send(200, b"late", "text/html")
        elif path == "/drip":  # headers at once, then one byte every 0.2 s
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            while not state.stop.wait(0.2):
                self.wfile.write(b"x")
                self.wfile.flush()
        elif path == "/drip-headers":  # a header line trickling in, a byte every 0.2 s, for 5 s
            self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            for _ in range(25):
                if state.stop.wait(0.2):
                    break
                self.wfile.write(b"x")
                self.wfile.flush()
            self.wfile.write(b"\r\nContent-Length: 0\r\nContent-Type: text/plain\r\n\r\n")
        else:
            self.send(404, b"", "text/plain")


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    try:
        yield running
    finally:
        running.close()


def error_of(url: str, policy: FetchPolicy = DEFAULT) -> PipelineError:
    with pytest.raises(PipelineError) as caught:
        fetch_article(url, policy)
    return caught.value


# --- refused URLs ---------------------------------------------------------------------------

REFUSED = [
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://0x7f.1/",
    "http://127.1/",
    "http://127.0.0.1./",
    "http://0.0.0.0/",
    "http://0/",
    "http://[::]/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::127.0.0.1]/",
    "http://localhost/",
    "http://localhost./",
    "http://LOCALHOST/",
    "http://api.localhost/",
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/",
    "http://100.100.100.200/",
    "http://224.0.0.1/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://[fd00:ec2::254]/",
    "http://[fec0::1]/",
    "http://[ff02::1]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[64:ff9b::7f00:1]/",
    "http://[64:ff9b::a00:1]/",
    "http://[2002:7f00:1::1]/",  # 6to4 of 127.0.0.1
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",  # Teredo
    "http://1.2.3.4.5/",  # numeric but no address
    "http://08.0.0.1/",  # not octal
    "ftp://example.com/",
    "file:///etc/passwd",
    "gopher://example.com/",
    "javascript:alert(1)",
    "http://user:pass@example.com/",
    "http://user@example.com/",
    "http:///path-only",
    "not a url at all",
]


@pytest.mark.parametrize("url", REFUSED)
def test_refused_urls(url: str, net: Net) -> None:
    with pytest.raises(PipelineError) as checked:
        check_url(url, DEFAULT)
    assert checked.value.code == "url_not_allowed"
    assert error_of(url).code == "url_not_allowed"
    assert net.connects == []
    assert net.lookups == []  # every one of these is decided without DNS


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://example.com/", "http and https"),
        ("http://user:pass@example.com/", "credentials"),
        ("file:///etc/passwd", "only http"),
        ("http:///x", "no host"),
        ("http://10.0.0.1/", "private address"),
        ("http://127.0.0.1/", "loopback address"),
        ("http://2130706433/", "loopback address"),
        ("http://169.254.169.254/", "metadata"),
        ("http://100.64.0.1/", "shared address space"),
        ("http://224.0.0.1/", "multicast"),
        ("http://[::ffff:10.0.0.1]/", "private address embedded in an IPv6 address"),
        ("http://[fe80::1]/", "link-local"),
        ("http://localhost/", "loopback name"),
    ],
)
def test_refusal_says_which_rule(url: str, words: str) -> None:
    with pytest.raises(PipelineError) as caught:
        check_url(url, DEFAULT)
    assert words in caught.value.message


def test_refused_targets_never_reach_the_server(server: Server, net: Net) -> None:
    net.dns["intranet.test"] = [["127.0.0.1"]]
    port = server.port
    urls = [
        f"http://127.0.0.1:{port}/page",
        f"http://2130706433:{port}/page",
        f"http://0x7f000001:{port}/page",
        f"http://0177.0.0.1:{port}/page",
        f"http://127.1:{port}/page",
        f"http://[::ffff:127.0.0.1]:{port}/page",
        f"http://localhost:{port}/page",
        f"http://localhost.:{port}/page",
        f"http://intranet.test:{port}/page",  # a name that resolves to loopback
        f"https://127.0.0.1:{port}/page",
    ]
    for url in urls:
        with pytest.raises(PipelineError) as checked:
            check_url(url, DEFAULT)
        assert checked.value.code == "url_not_allowed", url
        assert error_of(url).code == "url_not_allowed", url
    time.sleep(0.1)  # give a stray connection (there must be none) time to be accepted
    assert server.connections == 0
    assert server.requests == []
    assert net.connects == []


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://100.100.100.200/",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:169.254.169.254]/",
        "http://0.0.0.0/",
        "http://[::]/",
        "http://224.0.0.1/",
        "http://[ff02::1]/",
        "http://169.254.1.1/",
        "http://240.0.0.1/",
    ],
)
def test_allow_private_never_allows_metadata_unspecified_multicast(url: str) -> None:
    with pytest.raises(PipelineError) as caught:
        check_url(url, LOCAL)
    assert caught.value.code == "url_not_allowed"


def test_allow_private_allows_loopback_and_private_ranges() -> None:
    for url in ["http://127.0.0.1/", "http://[::1]/", "http://10.0.0.1/", "http://[fc00::1]/"]:
        check_url(url, LOCAL)
        vet_url(url, allow_private=True)  # the API's check at submit agrees


@pytest.mark.parametrize("url", REFUSED)
def test_the_api_refuses_at_submit_what_the_worker_refuses_without_dns(url: str) -> None:
    """One owner for the rules: the API's check (kernel.addresses, no network) refuses every
    URL the worker refuses before resolving anything, with the same words."""
    with pytest.raises(URLNotAllowed) as at_submit:
        vet_url(url)
    assert str(at_submit.value) == error_of(url).message


@pytest.mark.parametrize(
    "url",
    ["http://169.254.169.254/", "http://0xa9fea9fe/", "http://[::ffff:169.254.169.254]/"],
)
def test_allow_private_at_submit_still_refuses_metadata(url: str) -> None:
    with pytest.raises(URLNotAllowed, match="metadata"):
        vet_url(url, allow_private=True)


# --- DNS --------------------------------------------------------------------------------------


def test_names_are_judged_by_every_resolved_address(net: Net) -> None:
    net.dns["public.test"] = [["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]]
    net.dns["mixed.test"] = [["93.184.216.34", "10.0.0.7"]]
    net.dns["mapped.test"] = [["::ffff:192.168.0.1"]]
    net.dns["nat64.test"] = [["64:ff9b::5db8:d822"]]  # NAT64 of 93.184.216.34: fine
    check_url("https://public.test/article?id=1", DEFAULT)
    check_url("http://nat64.test/", DEFAULT)
    for host, words in [("mixed.test", "private"), ("mapped.test", "embedded")]:
        with pytest.raises(PipelineError) as caught:
            check_url(f"http://{host}/", DEFAULT)
        assert caught.value.code == "url_not_allowed"
        assert "resolves to" in caught.value.message
        assert words in caught.value.message
    assert net.connects == []


def test_unresolvable_host() -> None:
    with pytest.raises(PipelineError) as checked:
        check_url("http://no-such-host.invalid/", DEFAULT)
    assert checked.value.code == "url_unresolvable"
    assert error_of("http://no-such-host.invalid/").code == "url_unresolvable"


def test_connects_to_the_checked_address_not_a_fresh_lookup(server: Server, net: Net) -> None:
    """DNS rebinding: the first answer is checked and used; a second answer would be private."""
    net.dns["article.test"] = [["127.0.0.1"], ["10.66.66.66"], ["10.66.66.66"]]
    got = fetch_article(f"http://article.test:{server.port}/echo-host?x=1", LOCAL)
    assert got.text == f"article.test:{server.port}"  # Host header carries the name
    assert got.url == f"http://article.test:{server.port}/echo-host?x=1"
    assert net.lookups == ["article.test"]  # resolved once
    assert net.connects == [("127.0.0.1", server.port)]


# --- fetching from a loopback server ----------------------------------------------------------


def test_fetches_a_page(server: Server) -> None:
    got = fetch_article(f"{server.base}/page", LOCAL)
    assert got == Fetched(url=f"{server.base}/page", content_type="text/html", text=PAGE)
    (host,) = {host for _, host in server.requests}
    assert host == f"127.0.0.1:{server.port}"


def test_decoding(server: Server) -> None:
    assert fetch_article(f"{server.base}/latin", LOCAL).text == "café"
    assert fetch_article(f"{server.base}/nocharset", LOCAL).text == "ok \ufffd\ufffd done"
    assert fetch_article(f"{server.base}/bogus-charset", LOCAL).text == "plain"
    got = fetch_article(f"{server.base}/xhtml", LOCAL)
    assert got.content_type == "application/xhtml+xml"


def test_sends_the_user_agent(server: Server) -> None:
    policy = FetchPolicy(allow_private=True, user_agent="evenhand-test/1")
    assert fetch_article(f"{server.base}/echo-ua", policy).text == "evenhand-test/1"


def test_follows_a_redirect_chain(server: Server) -> None:
    got = fetch_article(f"{server.base}/redirect/3", LOCAL)
    assert got.url == f"{server.base}/page"
    assert got.text == PAGE
    assert server.paths() == ["/redirect/3", "/redirect/2", "/redirect/1", "/page"]


def test_absolute_and_relative_redirects(server: Server) -> None:
    assert fetch_article(f"{server.base}/absolute-redirect", LOCAL).url == f"{server.base}/page"
    got = fetch_article(f"{server.base}/relative-redirect/a/b", LOCAL)
    assert got.url == f"{server.base}/page"


@pytest.mark.parametrize(
    "path",
    ["/to-metadata", "/to-unspecified", "/to-reserved-decimal", "/to-link-local", "/to-file"],
)
def test_redirect_targets_are_checked(server: Server, net: Net, path: str) -> None:
    """allow_private opens loopback for the first hop but never these: the refusal comes from
    the per-hop check, before any connection to the redirect target."""
    assert error_of(f"{server.base}{path}", LOCAL).code == "url_not_allowed"
    assert server.paths() == [path]
    assert net.connects == [("127.0.0.1", server.port)]


def test_every_hop_is_vetted_with_the_policy(server: Server, monkeypatch) -> None:
    import worker.fetch as fetch

    seen: list[tuple[str, FetchPolicy]] = []
    original = fetch._vet

    def spy(url, policy, deadline):
        seen.append((str(url), policy))
        return original(url, policy, deadline)

    monkeypatch.setattr(fetch, "_vet", spy)
    fetch_article(f"{server.base}/redirect/2", LOCAL)
    assert seen == [
        (f"{server.base}/redirect/2", LOCAL),
        (f"{server.base}/redirect/1", LOCAL),
        (f"{server.base}/page", LOCAL),
    ]


def test_redirect_to_localhost_name_is_refused(server: Server) -> None:
    assert error_of(f"{server.base}/to-localhost", LOCAL).code == "url_not_allowed"
    assert server.paths() == ["/to-localhost"]


def test_too_many_redirects(server: Server) -> None:
    policy = FetchPolicy(allow_private=True, max_redirects=5)
    err = error_of(f"{server.base}/loop", policy)
    assert err.code == "fetch_too_many_redirects"
    assert len(server.requests) == 6  # the original request and 5 followed redirects
    assert fetch_article(
        f"{server.base}/redirect/2", FetchPolicy(allow_private=True, max_redirects=2)
    )
    tight = FetchPolicy(allow_private=True, max_redirects=2)
    assert error_of(f"{server.base}/redirect/3", tight).code == "fetch_too_many_redirects"
    zero = FetchPolicy(allow_private=True, max_redirects=0)
    assert error_of(f"{server.base}/redirect/1", zero).code == "fetch_too_many_redirects"


def test_redirect_without_location(server: Server) -> None:
    err = error_of(f"{server.base}/no-location", LOCAL)
    assert err.code == "fetch_failed"
    assert "302" in err.message


@pytest.mark.parametrize("path", ["/big", "/big-unsized"])
def test_too_large(server: Server, path: str) -> None:
    policy = FetchPolicy(allow_private=True, max_bytes=5_000_000, timeout=10)
    started = time.monotonic()
    assert error_of(f"{server.base}{path}", policy).code == "fetch_too_large"
    assert time.monotonic() - started < 5


def test_body_cap_boundary(server: Server) -> None:
    exact = FetchPolicy(allow_private=True, max_bytes=len(PAGE.encode()))
    assert fetch_article(f"{server.base}/page", exact).text == PAGE
    short = FetchPolicy(allow_private=True, max_bytes=len(PAGE.encode()) - 1)
    assert error_of(f"{server.base}/page", short).code == "fetch_too_large"


@pytest.mark.parametrize("path", ["/image", "/no-type"])
def test_unsupported_content_type(server: Server, path: str) -> None:
    err = error_of(f"{server.base}{path}", LOCAL)
    assert err.code == "fetch_unsupported_type"
    assert "PNG" not in err.message


@pytest.mark.parametrize(("path", "status"), [("/missing", 404), ("/broken", 500)])
def test_error_status(server: Server, path: str, status: int) -> None:
    err = error_of(f"{server.base}{path}?token=hunter2", LOCAL)
    assert err.code == "fetch_failed"
    assert str(status) in err.message
    assert "SECRET" not in str(err)
    assert "hunter2" not in str(err)


def test_slow_server_times_out(server: Server) -> None:
    policy = FetchPolicy(allow_private=True, timeout=0.5)
    started = time.monotonic()
    assert error_of(f"{server.base}/slow", policy).code == "fetch_timeout"
    assert time.monotonic() - started < 2


def test_deadline_covers_a_dripping_body(server: Server) -> None:
    """Each byte arrives well within any per-read timeout; the total deadline still ends it."""
    policy = FetchPolicy(allow_private=True, timeout=1.0)
    started = time.monotonic()
    assert error_of(f"{server.base}/drip", policy).code == "fetch_timeout"
    assert time.monotonic() - started < 2.5


def test_deadline_covers_dripping_headers(server: Server) -> None:
    """httpx gives each read its own timeout; the watchdog ends the hop at the deadline."""
    policy = FetchPolicy(allow_private=True, timeout=1.0)
    started = time.monotonic()
    assert error_of(f"{server.base}/drip-headers", policy).code == "fetch_timeout"
    assert time.monotonic() - started < 2.5


def test_deadline_covers_redirects(server: Server) -> None:
    policy = FetchPolicy(allow_private=True, timeout=0.000_001)
    assert error_of(f"{server.base}/redirect/2", policy).code == "fetch_timeout"


def test_connection_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    err = error_of(f"http://127.0.0.1:{port}/", LOCAL)
    assert err.code == "fetch_failed"


# --- https: the pinned IP with the real name for SNI and certificate checks -----------------


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=secure.test",
            "-addext", "subjectAltName=DNS:secure.test",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    running = Server(tls=context)
    try:
        yield running, cert
    finally:
        running.close()


def test_https_uses_the_host_name_for_sni_and_certificate(
    tls_server: tuple[Server, Path], net: Net, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, cert = tls_server
    net.dns["secure.test"] = [["127.0.0.1"]]
    url = f"https://secure.test:{server.port}/echo-host"

    # Not trusted yet: the certificate is really verified, and the handshake names the host.
    err = error_of(url, LOCAL)
    assert err.code == "fetch_failed"
    assert "TLS" in err.message
    assert server.sni[-1] == "secure.test"

    import certifi  # httpx builds its default context from certifi's bundle

    monkeypatch.setattr(certifi, "where", lambda: str(cert))
    got = fetch_article(url, LOCAL)
    assert got.text == f"secure.test:{server.port}"
    assert got.url == url
    assert server.sni[-1] == "secure.test"
    assert all(host == "127.0.0.1" for host, _ in net.connects)


# --- property: any private-range IPv4, spelled as one decimal integer, is refused ----------

PRIVATE_V4 = [
    ipaddress.ip_network(n)
    for n in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "100.64.0.0/10",
        "0.0.0.0/8",
    )
]


@st.composite
def private_ipv4(draw: st.DrawFn) -> ipaddress.IPv4Address:
    network = draw(st.sampled_from(PRIVATE_V4))
    offset = draw(st.integers(0, network.num_addresses - 1))
    return network[offset]


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(address=private_ipv4(), port=st.one_of(st.none(), st.integers(1, 65535)))
def test_decimal_integer_hosts_in_private_ranges_are_refused(
    address: ipaddress.IPv4Address, port: int | None, net: Net
) -> None:
    host = str(int(address)) + (f":{port}" if port else "")
    with pytest.raises(PipelineError) as caught:
        check_url(f"http://{host}/", DEFAULT)
    assert caught.value.code == "url_not_allowed"
    assert net.connects == []


@settings(max_examples=200, deadline=None)
@given(address=private_ipv4(), style=st.sampled_from(["hex", "octal", "hexint", "mapped"]))
def test_other_spellings_of_private_addresses_are_refused(
    address: ipaddress.IPv4Address, style: str
) -> None:
    octets = address.packed
    host = {
        "hex": ".".join(f"0x{b:x}" for b in octets),
        "octal": ".".join(f"0{b:o}" for b in octets),
        "hexint": f"0x{int(address):08x}",
        "mapped": f"[::ffff:{address}]",
    }[style]
    with pytest.raises(PipelineError) as caught:
        check_url(f"http://{host}/", DEFAULT)
    assert caught.value.code == "url_not_allowed"
