"""Generate the Python SDK from the committed OpenAPI document: `make sdk`, or the SDK tests.

openapi-python-client writes the package `computematch_client` into build/sdk/ (not
committed). A generation that warns (an endpoint or a schema it skipped) is a failure: the
SDK would silently lack part of the API. The build is reused while the document and the
generator are unchanged.
"""

import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "openapi" / "openapi.json"
OUT = ROOT / "build" / "sdk"
PACKAGE = "computematch_client"
STAMP = OUT / ".openapi.sha256"
# The generated code is formatted on its own terms, not by this project's ruff settings
# (which exclude build/).
CONFIG = """\
post_hooks:
  - "ruff check . --fix-only --isolated --quiet --target-version py311"
  - "ruff format . --isolated --quiet"
"""


class GenerationFailed(RuntimeError):
    pass


def _fingerprint() -> str:
    digest = hashlib.sha256(DOCUMENT.read_bytes())
    digest.update(importlib.metadata.version("openapi-python-client").encode())
    digest.update(CONFIG.encode())
    return digest.hexdigest()


def generate(*, force: bool = False) -> Path:
    """The folder to put on sys.path to `import computematch_client`."""
    fingerprint = _fingerprint()
    package = OUT / PACKAGE
    if not force and package.is_dir() and STAMP.exists() and STAMP.read_text() == fingerprint:
        return OUT
    OUT.mkdir(parents=True, exist_ok=True)
    STAMP.unlink(missing_ok=True)
    shutil.rmtree(package, ignore_errors=True)
    config = OUT / "openapi-python-client.yaml"
    config.write_text(CONFIG)
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [
            str(bin_dir / "openapi-python-client"),
            "generate",
            "--path",
            str(DOCUMENT),
            "--meta",
            "none",
            "--output-path",
            str(package),
            "--config",
            str(config),
            "--overwrite",
        ],
        cwd=OUT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    output = result.stdout + result.stderr
    if result.returncode != 0 or "warning" in output.lower() or not package.is_dir():
        raise GenerationFailed(f"openapi-python-client failed or warned:\n{output}")
    STAMP.write_text(fingerprint)
    return OUT


if __name__ == "__main__":
    try:
        print(f"SDK generated: {generate(force='--force' in sys.argv[1:]) / PACKAGE}")
    except GenerationFailed as exc:
        sys.exit(str(exc))
