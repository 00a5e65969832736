"""The portal's static files (CSS, ES modules) from package data, with ETags."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files

MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


@lru_cache(maxsize=1)
def load() -> dict[str, Asset]:
    """Every ``.js`` and ``.css`` file shipped in ``api.portal.static``, by file name."""
    found: dict[str, Asset] = {}
    for entry in files("fiberflow.api.portal.static").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1] if "." in entry.name else ""
        if not entry.is_file() or suffix not in MEDIA_TYPES:
            continue
        body = entry.read_bytes()
        digest = hashlib.sha256(body).hexdigest()[:20]
        found[entry.name] = Asset(body, MEDIA_TYPES[suffix], f'"{digest}"')
    return found


def get(name: str) -> Asset | None:
    # A lookup in what we ship, never a path join: no traversal possible.
    return load().get(name)
