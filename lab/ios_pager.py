"""The IOS ``--More--`` pager: output longer than the terminal stops after a screenful.

Paging is on until ``terminal length 0`` (netmiko's ``cisco_ios`` session preparation
sends it; Oxidized and NAPALM do the same). At the prompt the device reads single
keys, unechoed: space shows the next screenful, Return one more line, any other key
(``q``) abandons the rest of the output.
"""

from __future__ import annotations

from fiberflow.lab.cli_base import Reply

MORE = " --More-- "
# IOS wipes the pager prompt in place before printing on: back, blank, back.
ERASE = "\b" * len(MORE) + " " * len(MORE) + "\b" * len(MORE)
DEFAULT_LENGTH = 24  # a vty's terminal length until told otherwise


class Pager:
    """Pages ``lines`` in screenfuls of ``length - 1`` lines (the last row is the prompt).
    A reply that stops at the prompt carries ``on_key``: the session hands it the next key."""

    def __init__(self, lines: list[str], length: int) -> None:
        self.lines = lines
        self.page = max(length - 1, 1)
        self.shown = 0

    @staticmethod
    def needed(lines: list[str], length: int) -> bool:
        return length > 0 and len(lines) > max(length - 1, 1)

    def first(self) -> Reply:
        return self._show(self.page, erase="")

    def key(self, char: str) -> Reply:
        if char == " ":
            return self._show(self.page)
        if char in ("\r", "\n"):
            return self._show(1)
        # Any other key ends the output; the prompt follows on a fresh line.
        return Reply(ERASE)

    def _show(self, count: int, erase: str = ERASE) -> Reply:
        end = min(self.shown + count, len(self.lines))
        chunk = "\n".join(self.lines[self.shown : end])
        self.shown = end
        if end >= len(self.lines):
            return Reply(f"{erase}{chunk}")  # ends like unpaged output
        return Reply(f"{erase}{chunk}\n{MORE}", prompt=False, on_key=self.key)
