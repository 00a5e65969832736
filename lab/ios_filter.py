"""IOS output filters: ``show ... | include|exclude|begin|section|count REGEX``.

Everything after the filter keyword is the regular expression, spaces and further
``|`` included: on IOS ``| include a|b`` is one alternation, not a second pipe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The pipe options of IOS exec commands; each can be shortened to any prefix that is
# still unique among all of them (`| i`, `| inc`, `| sec`, `| b`, `| e`).
OPTIONS = ("append", "begin", "count", "exclude", "format", "include", "redirect", "section", "tee")
SUPPORTED = ("begin", "count", "exclude", "include", "section")


@dataclass(frozen=True)
class Filter:
    kind: str  # one of SUPPORTED
    regex: re.Pattern[str]

    def apply(self, lines: list[str]) -> list[str]:
        rx = self.regex
        if self.kind == "include":
            return [line for line in lines if rx.search(line)]
        if self.kind == "exclude":
            return [line for line in lines if not rx.search(line)]
        if self.kind == "begin":
            for i, line in enumerate(lines):
                if rx.search(line):
                    return lines[i:]
            return []
        if self.kind == "count":
            return [f"Number of lines which match regexp = {sum(1 for x in lines if rx.search(x))}"]
        return _section(rx, lines)


@dataclass(frozen=True)
class FilterError:
    """Why a filter was refused; ``at`` is the offset of the offending word, for the caret."""

    message: str
    at: int


def parse(spec: str, at: int) -> Filter | FilterError:
    """``spec`` is the text after the ``|``; ``at`` its offset in the command line."""
    stripped = spec.lstrip()
    at += len(spec) - len(stripped)
    word, _, rest = stripped.partition(" ")
    matches = [o for o in OPTIONS if word and o.startswith(word.lower())]
    if not matches:
        return FilterError("invalid", at)
    if len(matches) > 1:
        return FilterError("ambiguous", at)
    if matches[0] not in SUPPORTED:
        return FilterError("invalid", at)
    # IOS takes the pattern verbatim after the single space that ends the keyword.
    pattern = rest.rstrip("\r\n")
    if not pattern.strip():
        return FilterError("incomplete", at)
    try:
        regex = re.compile(pattern)
    except re.error:
        return FilterError("invalid", at + len(word) + 1)
    return Filter(matches[0], regex)


def _section(rx: re.Pattern[str], lines: list[str]) -> list[str]:
    """A matching line plus the lines indented below it (its children). A matching child
    line of an unmatched parent comes out alone, as IOS prints it."""
    out: list[str] = []
    depth: int | None = None  # indentation of the section being copied
    for line in lines:
        indent = len(line) - len(line.lstrip(" "))
        if depth is not None and indent > depth and line.strip():
            out.append(line)
            continue
        depth = None
        if rx.search(line):
            out.append(line)
            depth = indent
    return out
