"""How IOS reads a command line: keywords cut short, and where the parser gave up."""

from __future__ import annotations

from dataclasses import dataclass

Keyword = tuple[str, int]  # an IOS keyword and the fewest letters that still name it


@dataclass(frozen=True)
class Invalid:
    """The parser refused the line at offset ``at`` (the caret goes under it)."""

    at: int = 0


def words_are(words: list[str], *keywords: Keyword) -> bool:
    """``words`` start with ``keywords``, each in full or cut to at least its minimum
    (IOS keywords are case-insensitive)."""
    return len(words) >= len(keywords) and all(
        len(w) >= least and kw.startswith(w.lower())
        for w, (kw, least) in zip(words, keywords, strict=False)
    )


def offset(words: list[str], index: int) -> int:
    """Where word ``index`` starts in the space-joined line."""
    return sum(len(w) + 1 for w in words[:index])
