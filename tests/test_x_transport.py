"""accounts.x_transport: the connection under every call to X keeps requests' promises.

Kept alive across calls, replaced when X closed it, TLS verified like requests does,
content encodings undone. Against the X sandbox where X's behaviour matters; the TLS
checks need a certificate, so they use a bare HTTPS endpoint on loopback.
"""

import datetime
import gzip
import ipaddress
import socket
import ssl
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from accounts import x_client
from accounts.x_transport import KeepAliveTransport, _decode
from tests.sandbox import SandboxControl, SandboxProcess


def session_with_transport() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    transport = KeepAliveTransport()
    session.mount("http://", transport)
    session.mount("https://", transport)
    return session


def test_calls_share_one_connection(x_sandbox):
    session = session_with_transport()
    url = x_sandbox.base_url + "/_sandbox/config"

    first = session.get(url, timeout=5)
    socket_after_first = session.get_adapter(url)._connections.copy()
    second = session.get(url, timeout=5)

    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert [c.sock for c in socket_after_first.values()] == [
        c.sock for c in session.get_adapter(url)._connections.values()
    ]


def test_a_request_body_is_not_held_back_by_nagle(x_sandbox):
    """Headers and body go out in two writes: without TCP_NODELAY the body waits ~40 ms."""
    session = session_with_transport()
    url = x_sandbox.base_url + "/2/oauth2/token"
    session.post(url, data={"grant_type": "refresh_token", "refresh_token": "x"}, timeout=5)
    [connection] = session.get_adapter(url)._connections.values()
    assert connection.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_a_connection_x_closed_is_replaced_not_failed(settings):
    """X restarts between two calls (a deploy at X): the second call must still work."""
    settings.X_HTTP_RETRIES = 0
    first = SandboxProcess(rate_limit=10**6).start()
    port = urlsplit(first.base_url).port
    settings.X_API_BASE_URL = settings.X_WEB_BASE_URL = first.base_url
    settings.X_CONSUMER_KEY, settings.X_CONSUMER_SECRET = (
        "sandbox-consumer-key",
        "sandbox-consumer-secret",
    )
    try:
        [token] = SandboxControl(first.base_url).issue_tokens("ada_lovelace", "oauth1")
        assert x_client.verify_credentials(token["oauth_token"], token["oauth_token_secret"])
    finally:
        first.stop()
    with SandboxProcess(rate_limit=10**6, port=port) as second:
        [token] = SandboxControl(second.base_url).issue_tokens("ada_lovelace", "oauth1")
        calls_before = len(SandboxControl(second.base_url).calls())
        user = x_client.verify_credentials(token["oauth_token"], token["oauth_token_secret"])
        assert user.screen_name == "ada_lovelace"
        # One call, not a failed one and a retry: a request is never sent twice.
        assert len(SandboxControl(second.base_url).calls()) == calls_before + 1


def test_a_refused_connection_is_a_connection_error():
    session = session_with_transport()
    closed = SandboxProcess().start()
    url = closed.base_url + "/_sandbox/config"
    closed.stop()
    with pytest.raises(requests.ConnectionError):
        session.get(url, timeout=2)


def test_a_late_answer_is_a_read_timeout(x_sandbox):
    x_sandbox.fault("/2/users/me", delay_ms=1500)
    session = session_with_transport()
    with pytest.raises(requests.exceptions.ReadTimeout):
        session.get(x_sandbox.base_url + "/2/users/me", timeout=0.5)
    # The late answer must not be read as the next call's.
    x_sandbox.clear_faults()
    assert session.get(x_sandbox.base_url + "/_sandbox/config", timeout=5).status_code == 200


# --- TLS -------------------------------------------------------------------------------


def make_certificate(tmp_path):
    """A self-signed certificate for 127.0.0.1; returns (cert path, key path)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x-test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class Hello(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = gzip.compress(b'{"hello": "tls"}')
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def https_endpoint(tmp_path):
    cert_path, key_path = make_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}/", cert_path
    server.shutdown()
    server.server_close()


def test_an_untrusted_certificate_is_refused(https_endpoint):
    url, _ = https_endpoint
    with pytest.raises(requests.exceptions.SSLError):
        session_with_transport().get(url, timeout=5)


def test_a_certificate_from_the_given_bundle_is_trusted_and_gzip_is_undone(https_endpoint):
    url, cert_path = https_endpoint
    response = session_with_transport().get(url, timeout=5, verify=str(cert_path))
    assert response.status_code == 200
    assert response.json() == {"hello": "tls"}


# --- content encodings -------------------------------------------------------------------


def test_gzip_and_deflate_bodies_are_decoded():
    body = b'{"data": {"id": "1"}}'
    assert _decode(gzip.compress(body), "gzip") == body
    assert _decode(zlib.compress(body), "deflate") == body
    assert _decode(body, "") == body


def test_a_corrupt_or_unknown_encoding_is_an_error_not_garbage():
    with pytest.raises(requests.exceptions.ContentDecodingError):
        _decode(b"not gzip", "gzip")
    with pytest.raises(requests.exceptions.ContentDecodingError):
        _decode(b"whatever", "br")
