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


def binary_media_types(document: dict[str, Any]) -> list[str]:
    """Media types whose content is bytes (`application/pdf`, `image/png`, ...): the
    generator knows only `application/octet-stream` for them, and skips the rest."""
    found = set()
    for node in _walk(document):
        content = node.get("content")
        if not isinstance(content, dict):
            continue
        for media_type, media in content.items():
            schema = media.get("schema", {}) if isinstance(media, dict) else {}
            if schema.get("type") == "string" and schema.get("format") == "binary":
                found.add(media_type)
    return sorted(found - {"application/octet-stream", "multipart/form-data"})


def config(version: str, document: dict[str, Any]) -> str:
    # The generated code is formatted on its own terms, not by this project's ruff
    # settings (which exclude build/); the fix pass drops the imports a module leaves
    # unused.
    overrides = "".join(
        f"  {json.dumps(media_type)}: application/octet-stream\n"
        for media_type in binary_media_types(document)
    )
    return (
        f"project_name_override: {PROJECT}\n"
        f"package_name_override: {PACKAGE}\n"
        f'package_version_override: "{version}"\n'
        + (f"content_type_overrides:\n{overrides}" if overrides else "")
        + "post_hooks:\n"
        '  - "ruff check . --fix-only --isolated --quiet --target-version py311"\n'
        '  - "ruff format . --isolated --quiet"\n'
    )


def _inputs(document: Path) -> list[Path]:
    files = [document, ROOT / "pyproject.toml", Path(__file__)]
    files += sorted(p for p in TEMPLATES.rglob("*") if p.is_file())
    files += sorted(p for p in HAND_WRITTEN.rglob("*.py"))
    return files


def _fingerprint(document: Path) -> str:
    digest = hashlib.sha256(importlib.metadata.version("openapi-python-client").encode())
    for path in _inputs(document):
        digest.update(str(path).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def generate(*, force: bool = False, source: Path = DOCUMENT, out: Path = OUT) -> Path:
    """The project folder `out` (pyproject.toml, README.md, the package `PACKAGE`) generated
    from the document `source`."""
    fingerprint = _fingerprint(source)
    stamp = out / STAMP.name
    if not force and stamp.exists() and stamp.read_text() == fingerprint:
        return out
    shutil.rmtree(out, ignore_errors=True)
    work = out.parent / f"{out.name}-work"
    shutil.rmtree(work, ignore_errors=True)
    templates = work / "templates"
    shutil.copytree(TEMPLATES, templates)
    document = json.loads(source.read_text())
    (templates / "document.jinja").write_text(document_template(document))
    config_file = work / "openapi-python-client.yaml"
    config_file.write_text(config(app_version(), document))
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [
            str(bin_dir / "openapi-python-client"),
            "generate",
            "--path",
            str(source),
            "--meta",
            "pdm",
            "--custom-template-path",
            str(templates),
            "--output-path",
            str(out),
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
    package = out / PACKAGE
    if result.returncode != 0 or "warning" in output.lower() or not package.is_dir():
        raise GenerationFailed(f"openapi-python-client failed or warned:\n{output}")
    for module in HAND_WRITTEN.glob("*.py"):
        shutil.copy(module, package / module.name)
    shutil.rmtree(work, ignore_errors=True)
    stamp.write_text(fingerprint)
    return out


if __name__ == "__main__":
    try:
        print(f"SDK generated: {generate(force='--force' in sys.argv[1:])}")
    except GenerationFailed as exc:
        sys.exit(str(exc))
