"""What a simulated CLI returns for one input line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Reply:
    output: str = ""
    #: Print the prompt after the output (False while a question waits for an answer).
    prompt: bool = True
    #: Close the session after writing the output.
    close: bool = False
    #: Set while output waits at a pager prompt: the session hands the next key (one
    #: character, unechoed, no Enter needed) to this instead of reading a line.
    on_key: Callable[[str], Reply] | None = None


class Cli(Protocol):
    def banner(self) -> str: ...

    def prompt(self) -> str: ...

    def handle(self, line: str) -> Reply: ...
