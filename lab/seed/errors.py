"""Why a seed did not happen."""

from __future__ import annotations


class SeedRefused(Exception):
    """Bad input, no running lab, or no room: nothing was written."""


class SeedFailed(Exception):
    """A store refused mid-way; everything already written was rolled back."""
