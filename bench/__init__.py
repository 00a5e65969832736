"""Benchmarks: one command each (``python -m bench.<name> [--small]``), each appending a
table to docs/benchmarks.md with the machine, its load and a baseline measured in the
same run. See docs/benchmarks.md for how to read them."""
