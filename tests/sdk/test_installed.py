"""The built wheel, installed into a fresh virtual environment, drives a real server, and a
script using it passes mypy --strict there (on SQLite, and on PostgreSQL with
TEST_DATABASE_URL)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.validators import make_credit_code
from sdk.generate import PROJECT, app_version
from tests.live_server import LiveServer
from tests.sdk.conftest import STEP_SECONDS, run

FLOW = Path(__file__).with_name("installed_flow.py")

pytestmark = pytest.mark.slow


def test_the_wheel_is_the_typed_package_at_the_apps_version(
    sdk_python: Path, tmp_path: Path
) -> None:
    where = run(
        [
            str(sdk_python),
            "-c",
            "import importlib.metadata as m, importlib.resources as r, computematch_client as c;"
            f"print(m.version({PROJECT!r}));"
            "print(r.files(c).joinpath('py.typed').is_file());"
            "print(c.__file__)",
        ],
        cwd=tmp_path,
    ).split()
    assert where[0] == app_version()
    assert where[1] == "True"
    assert Path(where[2]).is_relative_to(sdk_python.parents[1])


def test_the_marketplace_flow_runs_from_the_installed_wheel(
    sdk_python: Path, server: LiveServer, tmp_path: Path
) -> None:
    script = tmp_path / FLOW.name
    shutil.copy(FLOW, script)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "CM_BASE_URL": server.base_url,
        "CM_OPERATOR_KEY": server.operator_key,
        "CM_PROVIDER_CODE": make_credit_code("330108", 301),
        "CM_ENTERPRISE_CODE": make_credit_code("330108", 302),
    }
    result = subprocess.run(
        [str(sdk_python), str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=STEP_SECONDS,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{server.log_tail()}"
    assert result.stdout.strip().endswith("flow ok")


def test_a_script_using_the_installed_package_passes_mypy_strict(
    sdk_python: Path, tmp_path: Path
) -> None:
    script = tmp_path / FLOW.name
    shutil.copy(FLOW, script)
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\nstrict = True\n")
    checked = [
        sys.executable,
        "-m",
        "mypy",
        "--config-file",
        str(config),
        "--python-executable",
        str(sdk_python),
        "--no-incremental",
    ]
    # The script against the installed package, then the package itself.
    assert "Success" in run([*checked, str(script)], cwd=tmp_path)
    assert "Success" in run([*checked, "--package", "computematch_client"], cwd=tmp_path)
