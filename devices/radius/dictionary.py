"""The RADIUS dictionary shipped inside this package (files ``dictionary*`` beside it)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pyrad.dictionary import Dictionary

DICTIONARY_PATH = Path(__file__).with_name("dictionary")


@lru_cache(maxsize=1)
def load_dictionary() -> Dictionary:
    """The parsed dictionary (RFC 2865/2866/2869/3576/5176 + Cisco), parsed once."""
    return Dictionary(str(DICTIONARY_PATH))


def is_known(attribute: str) -> bool:
    return attribute in load_dictionary().attributes
