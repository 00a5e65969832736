"""What a simulated CLI returns for one input line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Reply:
    output: str = ""
    #: Print the prompt after the output (False while a question waits for an answer).
    prompt: bool = True
    #: Close the session after writing the output.
    close: bool = False


class Cli(Protocol):
    def banner(self) -> str: ...

    def prompt(self) -> str: ...

    def handle(self, line: str) -> Reply: ...
