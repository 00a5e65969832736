"""Huawei SmartAX paging: long output stops at a More prompt until a key is pressed.

A session pages every ``DEFAULT_LINES`` lines until ``scroll`` (no argument: no paging,
what netmiko's huawei_olt session preparation sends), ``scroll N`` or
``screen-length 0 temporary`` changes it. At the prompt: space shows the next page,
Enter the next line, q/Q breaks back to the command prompt; other keys are ignored.
"""

from __future__ import annotations

from fiberflow.lab.cli_base import Reply

MORE = "  ---- More ( Press 'Q' to break ) ----"
# The device wipes the More prompt before it continues: cursor back, blanks, back again.
ERASE = f"\x1b[{len(MORE)}D" + " " * len(MORE) + f"\x1b[{len(MORE)}D"
DEFAULT_LINES = 24
MIN_LINES, MAX_LINES = 10, 512  # what `scroll N` accepts


class Pager:
    def __init__(self, lines: int | None = DEFAULT_LINES) -> None:
        #: Lines per page; None: no paging.
        self.lines = lines
        self._rest: list[str] = []

    def page(self, text: str) -> Reply:
        """The reply for ``text``: whole, or its first page with the More prompt."""
        lines = text.split("\n")
        if self.lines is None or len(lines) <= self.lines:
            return Reply(text)
        self._rest = lines[self.lines :]
        return self._more(lines[: self.lines], "")

    def key(self, key: str) -> Reply:
        if key in ("q", "Q"):
            self._rest = []
            return Reply(ERASE)
        if key == " ":
            count = self.lines or len(self._rest)
        elif key in ("\r", "\n"):
            count = 1
        else:
            return Reply(prompt=False, on_key=self.key)
        shown, self._rest = self._rest[:count], self._rest[count:]
        if not self._rest:
            return Reply(ERASE + "\n".join(shown))
        return self._more(shown, ERASE)

    def _more(self, shown: list[str], head: str) -> Reply:
        return Reply(head + "\n".join(shown) + "\n" + MORE, prompt=False, on_key=self.key)
