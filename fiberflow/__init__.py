"""fiberflow: the lifecycle of fibre subscriber services as Prefect flows, streamed live.

The one import root. In the repository each room is a top-level folder (``flows/``,
``tasks/``, ``devices/``, ...); ``fiberflow/`` links them under this one name, so an
installed fiberflow adds exactly one package to site-packages (docs/architecture.md).
"""

__version__ = "0.2.2"
