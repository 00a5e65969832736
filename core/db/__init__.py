"""Database access: engine/session factories, models and migrations."""

from fiberflow.core.db.engine import make_engine, normalize_url, session_factory

__all__ = ["make_engine", "normalize_url", "session_factory"]
