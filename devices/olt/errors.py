"""Typed OLT refusals, mapped from the failure lines a Huawei OLT prints."""

from __future__ import annotations

import re

from fiberflow.devices.base import PermanentDeviceError


class OltCommandFailed(PermanentDeviceError):
    """Any other ``Failure:`` or ``% `` line."""


class OntSerialExists(OltCommandFailed):
    """``Failure: SN already exists`` (the serial is registered elsewhere on this OLT)."""


class OntIdInUse(OltCommandFailed):
    """``Failure: The ONT ID has already existed`` (another serial holds this id)."""


class ServicePortIndexConflict(OltCommandFailed):
    """``Conflicted service virtual port index``."""


class OntNotFound(OltCommandFailed):
    """``The required ONT does not exist``."""


_FAILURE = re.compile(r"^\s*(Failure:.*|%\s.*|.*Conflicted service virtual port index.*)$", re.M)

_KINDS: list[tuple[str, type[OltCommandFailed]]] = [
    ("SN already exists", OntSerialExists),
    ("The ONT ID has already existed", OntIdInUse),
    ("Conflicted service virtual port index", ServicePortIndexConflict),
    ("The required ONT does not exist", OntNotFound),
]


def failure_line(output: str) -> str | None:
    """The first failure line in ``output``, stripped; None when there is none."""
    m = _FAILURE.search(output)
    return m.group(1).strip() if m else None


def raise_for_failure(device: str, command: str, output: str) -> None:
    line = failure_line(output)
    if line is None:
        return
    for text, kind in _KINDS:
        if text in line:
            raise kind(device, f"{command!r}: {line}")
    raise OltCommandFailed(device, f"{command!r}: {line}")
