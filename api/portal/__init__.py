"""The customer portal: sign-in by link, the service list and the live progress page.

Server-rendered HTML (``templates/``) plus a small ES module (``static/``) that
follows the SSE relay with the session cookie and falls back to polling the
events history. Everything ships as package data: no CDN, no build step.
"""

from fiberflow.api.portal.routes import router

__all__ = ["router"]
