"""The one-certificate CA file for flow runs on a plain-http Prefect API: set only when the
URL is http:// and the user chose nothing; a valid file Prefect's client loads; never a
way to trust an https server."""

from __future__ import annotations

import os
import socket
import ssl
import stat
import threading
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_SSL_CERT_FILE, PREFECT_API_URL, temporary_settings

from fiberflow.stack.prefect_tls import (
    CERT_FILE,
    PLAIN_HTTP_CA,
    SKIP_VERIFY,
    skip_ca_bundle_over_http,
)


def test_plain_http_gets_the_small_file(tmp_path: Path) -> None:
    env: dict[str, str] = {}
    path = skip_ca_bundle_over_http(env, "http://127.0.0.1:4200/api", tmp_path / "cache")
    assert path is not None and env == {CERT_FILE: str(path)}
    assert path.read_text() == PLAIN_HTTP_CA
    # Idempotent: a second worker start finds the same file.
    assert skip_ca_bundle_over_http({}, "http://127.0.0.1:4200/api", tmp_path / "cache") == path


@pytest.mark.parametrize(
    ("url", "env"),
    [
        ("https://prefect.example.net/api", {}),
        (None, {}),
        ("", {}),
        ("http://127.0.0.1:4200/api", {CERT_FILE: "/etc/ssl/mine.pem"}),
        ("http://127.0.0.1:4200/api", {SKIP_VERIFY: "true"}),
    ],
)
def test_anything_else_keeps_prefects_default_or_the_users_choice(
    tmp_path: Path, url: str | None, env: dict[str, str]
) -> None:
    before = dict(env)
    assert skip_ca_bundle_over_http(env, url, tmp_path) is None
    assert env == before
    assert not list(tmp_path.iterdir())


def test_an_unwritable_cache_dir_keeps_the_default(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        # root writes anywhere: a file where the directory should be fails for anyone.
        blocked = tmp_path / "file"
        blocked.write_text("")
        directory = blocked / "cache"
    else:
        directory = tmp_path / "ro"
        directory.mkdir()
        directory.chmod(stat.S_IRUSR | stat.S_IXUSR)
    env: dict[str, str] = {}
    assert skip_ca_bundle_over_http(env, "http://127.0.0.1:4200/api", directory) is None
    assert env == {}


async def test_prefects_client_builds_with_it(tmp_path: Path) -> None:
    env: dict[str, str] = {}
    path = skip_ca_bundle_over_http(env, "http://127.0.0.1:9/api", tmp_path)
    assert path is not None
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api",
                             PREFECT_API_SSL_CERT_FILE: str(path)}):  # fmt: skip
        async with get_client() as client:
            assert str(client.api_url).startswith("http://127.0.0.1:9")


def test_an_https_server_is_never_trusted_through_it(tmp_path: Path) -> None:
    key, cert = _self_signed(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with server_ctx.wrap_socket(conn, server_side=True):
                pass
        except (ssl.SSLError, OSError):
            pass  # the client refuses the handshake

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    path = skip_ca_bundle_over_http({}, "http://127.0.0.1:9/api", tmp_path / "ca")
    assert path is not None
    client_ctx = ssl.create_default_context(cafile=str(path))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as sock,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        client_ctx.wrap_socket(sock, server_hostname="127.0.0.1")
    thread.join(10)
    listener.close()


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A server key and self-signed certificate for 127.0.0.1."""
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1)).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ip_address("127.0.0.1"))]),
                       critical=False)
        .sign(private, hashes.SHA256())
    )  # fmt: skip
    key, cert = directory / "key.pem", directory / "cert.pem"
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))  # fmt: skip
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return key, cert
