"""The CLI fixture: Typer's test runner on the test database."""

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from app.cli import cli
from app.config import get_settings


class Cli:
    """`await run("create-key", ...)`: the CLI runs its own event loop, so from a thread."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    async def __call__(self, *args: str) -> Result:
        return await asyncio.to_thread(self.runner.invoke, cli, list(args))


@pytest.fixture
def run(app: Any, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    """The CLI on the test database (reset by the `app` fixture)."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield Cli()
    get_settings.cache_clear()
