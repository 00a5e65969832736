"""TextFSM parsing: ntc-templates by command, or a template file (ntc's or our own)."""

from __future__ import annotations

from pathlib import Path

import ntc_templates
import textfsm
from ntc_templates.parse import parse_output

NTC_TEMPLATES = Path(ntc_templates.__file__).parent / "templates"


class ParseError(ValueError):
    """Output did not match the template it should match."""


def parse_ntc(platform: str, command: str, text: str) -> list[dict[str, object]]:
    """Parse with the ntc-templates index entry for ``command`` on ``platform``."""
    try:
        rows = parse_output(platform=platform, command=command, data=text)
    except Exception as exc:  # textfsm raises its own error types; surface one kind
        raise ParseError(f"{platform} {command!r}: {exc}") from exc
    return [dict(r) for r in rows]


def parse_file(template: Path, text: str) -> list[dict[str, object]]:
    """Parse with one template file; rows as lower-case keyed dicts like ntc's."""
    with template.open() as fh:
        fsm = textfsm.TextFSM(fh)
    try:
        rows = fsm.ParseText(text)
    except textfsm.TextFSMError as exc:
        raise ParseError(f"{template.name}: {exc}") from exc
    header = [h.lower() for h in fsm.header]
    return [dict(zip(header, row, strict=True)) for row in rows]
