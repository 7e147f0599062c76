"""docs/integration.md's SDK section, run as written: its Python blocks, one script, with the
installed wheel against a real server. A `print(...)` with a trailing comment must print
that comment."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.live_server import LiveServer
from tests.sdk.conftest import STEP_SECONDS, run

GUIDE = ROOT / "docs" / "integration.md"
SECTION = "## Worked example with the Python SDK"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
PRINTED = re.compile(r"^\s*print\(.*\)\s+# (.*)$", re.MULTILINE)

pytestmark = pytest.mark.slow


def sdk_section() -> str:
    text = GUIDE.read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return text[start : end if end != -1 else None]


def test_the_sdk_section_has_the_whole_flow() -> None:
    code = "\n".join(BLOCK.findall(sdk_section()))
    for step in ("quotes.create", "orders.create", "except Conflict", "orders.iter"):
        assert step in code


def test_the_sdk_examples_run_as_written_and_print_what_they_say(
    sdk_python: Path, server: LiveServer, tmp_path: Path
) -> None:
    code = "\n".join(BLOCK.findall(sdk_section()))
    expected = PRINTED.findall(code)
    assert len(expected) >= 8
    script = tmp_path / "guide.py"
    script.write_text(code)
    result = subprocess.run(
        [str(sdk_python), str(script)],
        cwd=tmp_path,
        env={
            "PATH": os.environ.get("PATH", ""),
            "COMPUTEMATCH_URL": server.base_url,
            "COMPUTEMATCH_OPERATOR_KEY": server.operator_key,
        },
        capture_output=True,
        text=True,
        timeout=STEP_SECONDS,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{server.log_tail()}"
    assert result.stdout.splitlines() == [line.strip() for line in expected]


def test_the_sdk_examples_pass_mypy_strict(sdk_python: Path, tmp_path: Path) -> None:
    script = tmp_path / "guide.py"
    script.write_text("\n".join(BLOCK.findall(sdk_section())))
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\nstrict = True\n")
    checked = run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(config),
            "--python-executable",
            str(sdk_python),
            "--no-incremental",
            str(script),
        ],
        cwd=tmp_path,
    )
    assert "Success" in checked
