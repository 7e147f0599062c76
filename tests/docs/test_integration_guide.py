"""docs/integration.md's curl flow, run as written against a live server: every shell
block of "Worked example with curl" in order, in one bash, and each output the guide
shows (a `# {...}` comment closing a block) compared with what the server answered."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.live_server import live_server

GUIDE = ROOT / "docs" / "integration.md"
SECTION = "## Worked example with curl"
GUIDE_API = "API=http://127.0.0.1:8000"
MARK = "::block "


def curl_blocks() -> list[str]:
    text = GUIDE.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.index("\n## ", start + len(SECTION))
    return re.findall(r"^```sh\n(.*?)^```", text[start:end], flags=re.DOTALL | re.MULTILINE)


def shown_output(block: str) -> Any:
    """The JSON the guide shows after a block's commands, if it shows one."""
    last = block.rstrip().splitlines()[-1]
    if not last.startswith("# {"):
        return None
    return json.loads(last.removeprefix("# "))


def outputs(stdout: str) -> list[str]:
    return [part.split("\n", 1)[1] if "\n" in part else "" for part in stdout.split(MARK)[1:]]


def last_json(output: str) -> Any:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    assert lines, "the block printed nothing"
    return json.loads(lines[-1])


def test_the_guide_uses_nothing_a_fresh_machine_lacks() -> None:
    blocks = curl_blocks()
    text = "\n".join(blocks)
    for tool in ("uuidgen", "openssl"):
        assert tool not in text, tool
    # No date is written down: each is computed from today.
    assert not re.search(r"20\d\d-\d\d-\d\dT", text)
    assert "year=20" not in text
    assert "Idempotency-Key: $KEY" in text


def test_the_key_of_the_server_block_is_made_as_written(tmp_path: Path) -> None:
    server_block = curl_blocks()[0]
    assert "uvicorn app.main:app" in server_block
    export = server_block.splitlines()[0]
    assert export.startswith("export COMPUTEMATCH_OPERATOR_KEY=")
    made = subprocess.run(
        ["bash", "-c", f"{export}\necho $COMPUTEMATCH_OPERATOR_KEY"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert re.fullmatch(r"[0-9a-f]{64}\n", made.stdout), made


@pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("bash", "curl", "jq", "date", "python3")),
    reason="the guide's curl flow needs bash, curl, jq, GNU date and python3",
)
def test_the_curl_flow_runs_as_written(tmp_path: Path) -> None:
    server_block, *blocks = curl_blocks()
    assert "uvicorn" in server_block
    assert GUIDE_API in blocks[0]
    with live_server(tmp_path) as server:
        script = ["set -euo pipefail"]
        for number, block in enumerate(blocks):
            # The guide's server listens on :8000; this one on a free port.
            script += [
                f'echo; echo "{MARK}{number}"',
                block.replace(GUIDE_API, f"API={server.base_url}"),
            ]
        script.append(
            f'echo; echo "{MARK}ids"; echo "$PROVIDER $EKEY $REQUEST $OFFER $QUOTE $ORDER"'
        )
        env = {**os.environ, "COMPUTEMATCH_OPERATOR_KEY": server.operator_key}
        ran = subprocess.run(
            ["bash", "-c", "\n".join(script)],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=300,
        )
        assert ran.returncode == 0, ran.stderr + "\n" + server.log_tail()
    answered = outputs(ran.stdout)
    assert len(answered) == len(blocks) + 1, ran.stdout
    ids = answered[-1].split()
    assert len(ids) == 6, answered[-1]
    assert "null" not in ids, answered[-1]
    provider, _, request, offer, quote, order = ids
    assert provider.startswith("prv_")
    assert request.startswith("req_")
    assert order.startswith("ord_")

    # Every output the guide shows is what the server answered.
    shown = 0
    for block, output in zip(blocks, answered, strict=False):
        expected = shown_output(block)
        if expected is not None:
            assert last_json(output) == expected, (block, output)
            shown += 1
    assert shown >= 3  # the sync, the completed order, the voucher usage

    by_step = dict(zip(range(len(blocks)), answered, strict=False))
    best = json.loads("".join(by_step[4].splitlines()))  # step 4's match, pretty printed
    assert best["offer_id"] == offer
    assert best["gross_amount"] == "552960.00"
    assert best["subsidy"]["program_id"] == "binjiang-compute-2025"
    assert best["subsidy"]["amount"] == "331776.00"
    assert best["net_amount"] == "221184.00"
    assert best["net_price_per_card_hour"] == "4.80"
    # Step 5's retry with the same Idempotency-Key answered the order it had placed.
    assert last_json(by_step[5]) == {"id": order, "status": "reserved"}
    assert quote
