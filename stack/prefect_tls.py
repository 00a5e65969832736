"""Flow runs talking to a Prefect API over plain ``http://`` skip loading a CA bundle.

Every Prefect client builds an SSL context when it is created, loading
``PREFECT_API_SSL_CERT_FILE`` (default: certifi's bundle of ~150 CAs, ~25 ms of CPU
each time on this project's machines) whether or not the API URL uses TLS. A flow run
creates more than a dozen clients (the engine, the suspension observer, concurrency
slots, the events worker), so on a busy machine a burst of runs spent a large share of
its CPU parsing certificates it never used (docs/benchmarks.md, the profile of
2026-12-07). Over ``http://`` no handshake ever happens, so the worker points Prefect at
a file holding one certificate instead: the context is then built in ~0.4 ms.

The certificate below is self-signed and its private key was never kept; it is trusted
only by the Prefect clients of flow runs whose API URL is ``http://``, where nothing is
verified at all. Should such a client ever be sent to an ``https://`` server, the
server's certificate fails verification against it: the failure is closed, never open.
A user who sets ``PREFECT_API_SSL_CERT_FILE`` or ``PREFECT_API_TLS_INSECURE_SKIP_VERIFY``
keeps their own choice; an ``https://`` API keeps Prefect's default.
"""

from __future__ import annotations

import logging
import os
from collections.abc import MutableMapping
from pathlib import Path

log = logging.getLogger(__name__)

PLAIN_HTTP_CA = """\
-----BEGIN CERTIFICATE-----
MIIByTCCAW+gAwIBAgIUdPZ2zIvXmoZUeH6jMOdAhxcrVeMwCgYIKoZIzj0EAwIw
OTE3MDUGA1UEAwwuZmliZXJmbG93OiBQcmVmZWN0IEFQSSBvdmVyIHBsYWluIGh0
dHAsIG5vIFRMUzAgFw0yNjEyMDcxMDQ4MTZaGA8yMTI2MTExMzEwNDgxNlowOTE3
MDUGA1UEAwwuZmliZXJmbG93OiBQcmVmZWN0IEFQSSBvdmVyIHBsYWluIGh0dHAs
IG5vIFRMUzBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABHqYHoaD8MBzjU/3hsFq
xcil7Re9/wcGoYlreEG5BsnbeezgefFMssHTHKNtSWK5sUOuMH8cgqE/1OlBxzQW
EuKjUzBRMB0GA1UdDgQWBBTUEegCex4VhQt/Yl0i3lw+L7HOAjAfBgNVHSMEGDAW
gBTUEegCex4VhQt/Yl0i3lw+L7HOAjAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49
BAMCA0gAMEUCIQD1TqsTJcIRou+H4GZzEvlz2PL6/JP0vqsM1kDVI7TTjgIgeUAk
J+Y/VZQDwlceNsz6lOZpcy7jVSmYwCKbLxxSXiE=
-----END CERTIFICATE-----
"""
CERT_FILE = "PREFECT_API_SSL_CERT_FILE"
SKIP_VERIFY = "PREFECT_API_TLS_INSECURE_SKIP_VERIFY"


def skip_ca_bundle_over_http(
    environ: MutableMapping[str, str], api_url: str | None, directory: Path
) -> Path | None:
    """Set ``PREFECT_API_SSL_CERT_FILE`` in ``environ`` to the one-certificate file (written
    under ``directory``) when ``api_url`` is plain http and the user chose nothing
    themselves. Returns the file, or None when nothing was changed."""
    if not api_url or not api_url.startswith("http://"):
        return None
    if environ.get(CERT_FILE) or environ.get(SKIP_VERIFY):
        return None
    path = directory / "prefect-plain-http-ca.pem"
    try:
        if not path.is_file() or path.read_text() != PLAIN_HTTP_CA:
            directory.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(PLAIN_HTTP_CA)
            tmp.replace(path)  # atomic: a run never reads half a file
    except OSError as exc:  # a read-only cache dir: Prefect's default, only slower
        log.warning("could not write %s; runs load the full CA bundle", path,
                    extra={"error": str(exc)})  # fmt: skip
        return None
    environ[CERT_FILE] = str(path)
    return path
