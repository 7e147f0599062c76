"""The house's layout holds: the import contracts (pyproject.toml, [tool.importlinter])
and tests/ mirroring app/."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Suites about the whole API rather than one package.
WHOLE_API_SUITES = {"security", "fuzz", "sdk", "docs", "edge", "faults"}


def test_the_import_contracts_are_kept() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_tests_mirror_the_app_packages() -> None:
    packages = {p.name for p in (ROOT / "app").iterdir() if p.is_dir() and p.name != "__pycache__"}
    suites = {p.name for p in (ROOT / "tests").iterdir() if (p / "__init__.py").exists()}
    assert suites - WHOLE_API_SUITES <= packages, sorted(suites - WHOLE_API_SUITES - packages)
