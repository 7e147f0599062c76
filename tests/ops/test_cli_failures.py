"""Every CLI failure is one line saying what to do, a non-zero exit status, and no
traceback unless -v: run as a person runs it, in a process of its own, from a
directory outside the project."""

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from app.config import Settings, project_dir
from tests.conftest import ROOT, _admin


def cli(cwd: Path, *args: str, database_url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPUTEMATCH_")}
    env.pop("DATABASE_URL", None)
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line_failure(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines
    return lines[0]


@pytest.fixture
def empty_database(tmp_path: Path) -> Iterator[str]:
    """A database that exists but was never migrated, on the backend under test."""
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        path = tmp_path / "empty.db"
        path.touch()
        yield f"sqlite+aiosqlite:///{path}"
        return
    name = f"cm_empty_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(base, f'CREATE DATABASE "{name}"'))
    yield make_url(base).set(database=name).render_as_string(hide_password=False)
    asyncio.run(_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_an_unmigrated_database_says_to_migrate(tmp_path: Path, empty_database: str) -> None:
    for command in (["create-key"], ["check-invariants"], ["voucher-report"]):
        line = one_line_failure(cli(tmp_path, *command, database_url=empty_database))
        assert "has no tables yet" in line, line
        assert "alembic upgrade head" in line
        assert "make migrate" in line
    assert not (tmp_path / "var").exists()


def test_verbose_shows_the_traceback(tmp_path: Path, empty_database: str) -> None:
    result = cli(tmp_path, "-v", "check-invariants", database_url=empty_database)
    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_a_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'var' / 'computematch.db'}"
    line = one_line_failure(cli(tmp_path, "create-key", database_url=url))
    assert "no database at" in line
    assert "make migrate" in line
    assert not (tmp_path / "var").exists()


@pytest.mark.parametrize(
    ("url", "fix"),
    [
        ("postgresql://app:s3cret-pw@127.0.0.1/computematch", "postgresql+asyncpg://"),
        ("postgresql+psycopg://app:s3cret-pw@127.0.0.1/db", "postgresql+asyncpg://"),
        ("sqlite:///var/computematch.db", "sqlite+aiosqlite://"),
        ("mysql+aiomysql://app:s3cret-pw@127.0.0.1/db", "postgresql+asyncpg://"),
    ],
)
def test_a_database_url_without_the_async_driver_says_which(
    tmp_path: Path, url: str, fix: str
) -> None:
    line = one_line_failure(cli(tmp_path, "create-key", database_url=url))
    assert fix in line, line
    assert "s3cret-pw" not in line
    assert "DATABASE_URL" in line


def test_a_bad_setting_names_its_variable(tmp_path: Path) -> None:
    result = cli(tmp_path, "create-key", database_url="sqlite+aiosqlite:///x.db")
    env_result = subprocess.run(
        [sys.executable, "-m", "app.cli", "create-key"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COMPUTEMATCH_LOG_LEVEL": "loud"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "no database at" in one_line_failure(result)
    assert "COMPUTEMATCH_LOG_LEVEL" in one_line_failure(env_result)


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--role", "enterprise"], "--enterprise-id"),
        (["--role", "provider"], "--provider-id"),
        (["--role", "provider", "--provider-id", "p", "--enterprise-id", "e"], "--enterprise-id"),
        (["--role", "auditor"], "--role"),
    ],
)
def test_create_key_says_which_option_is_missing(
    tmp_path: Path, args: list[str], flag: str
) -> None:
    line = one_line_failure(cli(tmp_path, "create-key", *args))
    assert flag in line, line
    assert "pydantic" not in line
    assert "http" not in line


def test_the_default_database_is_the_projects_wherever_the_command_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("COMPUTEMATCH_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    url = Settings(_env_file=None).database_url  # type: ignore[call-arg]
    assert url == f"sqlite+aiosqlite:///{ROOT / 'var' / 'computematch.db'}"
    assert project_dir() == ROOT
