"""``python -m fiberflow`` is the ``fiberflow`` command."""

from fiberflow.stack.cli import main

main()
