"""Console, progress and error handling shared by every command."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from novarank.errors import NovarankError

console = Console()
F = TypeVar("F", bound=Callable[..., Any])


def single_blas_thread() -> None:
    """Scoring and ALS parallelise themselves: one BLAS thread avoids oversubscription."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")


def friendly_errors(fn: F) -> F:
    """Print our own errors as one red line and exit 2 instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except NovarankError as exc:
            console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)  # one line
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


@contextmanager
def steps(title: str) -> Iterator[Callable[..., Callable[[int], None]]]:
    """Progress for a multi-step job: call `step(name)` for a spinner, or
    `step(name, total=n)` for a bar, and advance it with the returned function."""
    with Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task(title, total=None)

        def step(name: str, total: int | None = None) -> Callable[[int], None]:
            progress.update(task, description=f"{title}: {name}", total=total, completed=0)
            return lambda n: progress.advance(task, n)

        yield step
        progress.update(task, description=f"{title}: done", total=1, completed=1)


def metrics_table(rows: list[dict], title: str, cohorts: bool = True) -> Table:
    table = Table(title=title)
    for col in ("method", "cohort", "users", "recall", "ndcg", "hit_rate", "mrr", "coverage"):
        table.add_column(col, justify="left" if col in ("method", "cohort") else "right")
    for r in rows:
        if not cohorts and r["cohort"] != "all":
            continue
        table.add_row(r["method"], r["cohort"], str(r["users"]),
                      *(f"{r[m]:.4f}" for m in ("recall", "ndcg", "hit_rate", "mrr", "coverage")))
    return table
