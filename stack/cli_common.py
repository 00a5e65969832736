"""What the ``fiberflow`` commands share: the options several take, the data dir they
join, the one-line failure, the logging set-up."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from fiberflow.core.settings import get_settings

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data directory (default $FIBERFLOW_DATA_DIR or ./.fiberflow)"),
]

ApiPort = Annotated[int, typer.Option(help="Port of the API and portal")]
PrefectPort = Annotated[int, typer.Option(help="Port of the Prefect server and UI")]


def use_data_dir(data_dir: Path | None) -> None:
    if data_dir is not None:
        os.environ["FIBERFLOW_DATA_DIR"] = str(data_dir)
    get_settings.cache_clear()


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"fiberflow: {message}", err=True)
    return typer.Exit(code)


def setup_logging() -> None:
    from fiberflow.core.logs import configure

    s = get_settings()
    configure(s.log_level, s.log_json)
