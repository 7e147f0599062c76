"""The SDK as its users get it: generated (build/sdk, made when missing or stale), built to
a wheel, installed into a fresh virtual environment; and a real server to drive."""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sdk.generate import PACKAGE, generate
from tests.live_server import LiveServer, live_server

STEP_SECONDS = 600


def run(command: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a step; its output in the failure when it fails."""
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=STEP_SECONDS
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="session")
def sdk_project() -> Path:
    """The generated project folder (pyproject.toml, README.md, the package)."""
    return generate()


@pytest.fixture(scope="session")
def sdk_import_path(sdk_project: Path) -> Iterator[Path]:
    """Makes `import computematch_client` work in this process, for the tests of its parts."""
    sys.path.insert(0, str(sdk_project))
    yield sdk_project / PACKAGE
    sys.path.remove(str(sdk_project))


@pytest.fixture(scope="session")
def wheel(sdk_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), "."], cwd=sdk_project)
    (built,) = out.glob("*.whl")
    return built


@pytest.fixture(scope="session")
def sdk_python(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a new virtual environment holding the wheel and its dependencies only."""
    venv = tmp_path_factory.mktemp("client") / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=venv.parent)
    python = venv / "bin" / "python"
    run([str(python), "-m", "pip", "install", "--quiet", str(wheel)], cwd=venv.parent)
    return python


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("sdk-server")) as running:
        yield running
