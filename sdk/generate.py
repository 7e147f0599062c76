"""Generate the Python SDK, the installable package `computematch-client`: `make sdk`.

openapi-python-client writes the project (pyproject.toml, README.md, the package
`computematch_client` with `py.typed`) into build/sdk/ (not committed) from the committed
openapi/openapi.json, rendered with this folder's templates (sdk/templates/, which override
the generator's own), then the hand-written modules (sdk/computematch_client/) are copied
into the package. Nothing generated is edited by hand: change a template or a hand-written
module and generate again.

The templates cannot read the document's raw parameters, so what they need to know about
it is computed here and handed to them as one more template, `document.jinja`: which
string patterns are decimal numbers (money and rates become `Decimal`) and which query
parameters carry one.

A generation that warns (an endpoint or a schema it skipped) is a failure: the SDK would
silently lack part of the API. The build is reused while its inputs are unchanged.
"""

import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT = ROOT / "openapi" / "openapi.json"
SOURCES = ROOT / "sdk"
TEMPLATES = SOURCES / "templates"
HAND_WRITTEN = SOURCES / "computematch_client"
OUT = ROOT / "build" / "sdk"
PROJECT = "computematch-client"
PACKAGE = "computematch_client"
STAMP = OUT / ".inputs.sha256"
# A pattern made only of digits, sign, grouping and quantifiers, with a decimal point:
# `^-?[0-9]{1,13}\.[0-9]{2}$` (money out), `^[0-9]{1,13}(\.[0-9]{1,2})?$` (money in),
# `^[0-9]+\.[0-9]{2,4}$` (rates). Region codes (`^[0-9]{2,6}$`) have no point: strings.
DECIMAL_PATTERN = re.compile(r"^(?:\[0-9\]|\\\.|[-^$()|?+*{},0-9])+$")


class GenerationFailed(RuntimeError):
    pass


def app_version() -> str:
    """The SDK is versioned as the service it was generated from."""
    with open(ROOT / "pyproject.toml", "rb") as file:
        version: str = tomllib.load(file)["project"]["version"]
    return version


def is_decimal_pattern(pattern: str) -> bool:
    return "\\." in pattern and DECIMAL_PATTERN.match(pattern) is not None


def _walk(node: Any) -> Any:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def decimal_patterns(document: dict[str, Any]) -> list[str]:
    found = {
        node["pattern"]
        for node in _walk(document)
        if node.get("type") == "string" and isinstance(node.get("pattern"), str)
    }
    return sorted(p for p in found if is_decimal_pattern(p))


def _is_decimal_schema(schema: dict[str, Any]) -> bool:
    branches = [b for b in schema.get("anyOf", [schema]) if b.get("type") != "null"]
    return (
        len(branches) == 1
        and branches[0].get("type") == "string"
        and is_decimal_pattern(branches[0].get("pattern", ""))
    )


def decimal_query_parameters(document: dict[str, Any]) -> dict[str, list[str]]:
    """operationId: the names of its query parameters that are decimal strings."""
    found: dict[str, list[str]] = {}
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "operationId" not in operation:
                continue
            names = [
                p["name"]
                for p in operation.get("parameters", [])
                if p.get("in") == "query" and _is_decimal_schema(p.get("schema", {}))
            ]
            if names:
                found[operation["operationId"]] = names
    return found


def document_template(document: dict[str, Any]) -> str:
    return (
        "{# Computed by sdk/generate.py from openapi/openapi.json. #}\n"
        f"{{% set DECIMAL_PATTERNS = {json.dumps(decimal_patterns(document))} %}}\n"
        f"{{% set DECIMAL_QUERY = {json.dumps(decimal_query_parameters(document))} %}}\n"
    )


def config(version: str) -> str:
    # The generated code is formatted on its own terms, not by this project's ruff
    # settings (which exclude build/); the fix pass drops the imports a module leaves
    # unused.
    return (
        f"project_name_override: {PROJECT}\n"
        f"package_name_override: {PACKAGE}\n"
        f'package_version_override: "{version}"\n'
        "post_hooks:\n"
        '  - "ruff check . --fix-only --isolated --quiet --target-version py311"\n'
        '  - "ruff format . --isolated --quiet"\n'
    )


def _inputs() -> list[Path]:
    files = [DOCUMENT, ROOT / "pyproject.toml", Path(__file__)]
    files += sorted(p for p in TEMPLATES.rglob("*") if p.is_file())
    files += sorted(p for p in HAND_WRITTEN.rglob("*.py"))
    return files


def _fingerprint() -> str:
    digest = hashlib.sha256(importlib.metadata.version("openapi-python-client").encode())
    for path in _inputs():
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def generate(*, force: bool = False) -> Path:
    """The project folder (with pyproject.toml); its parent-less package is OUT/PACKAGE."""
    fingerprint = _fingerprint()
    if not force and STAMP.exists() and STAMP.read_text() == fingerprint:
        return OUT
    shutil.rmtree(OUT, ignore_errors=True)
    work = OUT.parent / "sdk-work"
    shutil.rmtree(work, ignore_errors=True)
    templates = work / "templates"
    shutil.copytree(TEMPLATES, templates)
    document = json.loads(DOCUMENT.read_text())
    (templates / "document.jinja").write_text(document_template(document))
    config_file = work / "openapi-python-client.yaml"
    config_file.write_text(config(app_version()))
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [
            str(bin_dir / "openapi-python-client"),
            "generate",
            "--path",
            str(DOCUMENT),
            "--meta",
            "pdm",
            "--custom-template-path",
            str(templates),
            "--output-path",
            str(OUT),
            "--config",
            str(config_file),
            "--overwrite",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    output = result.stdout + result.stderr
    package = OUT / PACKAGE
    if result.returncode != 0 or "warning" in output.lower() or not package.is_dir():
        raise GenerationFailed(f"openapi-python-client failed or warned:\n{output}")
    for module in HAND_WRITTEN.glob("*.py"):
        shutil.copy(module, package / module.name)
    shutil.rmtree(work, ignore_errors=True)
    STAMP.write_text(fingerprint)
    return OUT


if __name__ == "__main__":
    try:
        print(f"SDK generated: {generate(force='--force' in sys.argv[1:])}")
    except GenerationFailed as exc:
        sys.exit(str(exc))
