"""The FastAPI app: REST, SSE relay, auth and the portal. No device I/O in the request path."""
