"""The accelerator catalog seed: shape, both kinds, and domestic flags that match the vendor."""

import re
from collections import Counter
from decimal import Decimal, InvalidOperation

import pytest

from migrations.seed.accelerators import ACCELERATORS

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]+$")
DECIMAL_TEXT = re.compile(r"^\d+(\.\d+)?$")
KEYS = {"id", "vendor", "model", "domestic", "memory_gb", "bf16_tflops", "source"}

# Who designed the hardware decides the flag (spec: "true for hardware designed by
# Chinese vendors"). A vendor missing here fails the test until someone decides.
VENDOR_IS_DOMESTIC = {
    "Huawei": True,
    "Cambricon": True,
    "Hygon": True,
    "Kunlunxin": True,
    "Enflame": True,
    "Iluvatar CoreX": True,
    "MetaX": True,
    "Moore Threads": True,
    "Biren": True,
    "NVIDIA": False,
    "AMD": False,
    "Intel": False,
}

REQUIRED_IDS = {
    "huawei-ascend-910b",
    "huawei-ascend-910c",
    "cambricon-mlu370-x8",
    "cambricon-mlu590",
    "hygon-dcu-k100",
    "kunlunxin-p800",
    "nvidia-a100-sxm-80gb",
    "nvidia-a800-sxm-80gb",
    "nvidia-h100-sxm",
    "nvidia-h800-sxm",
    "nvidia-h20",
    "nvidia-l20",
    "nvidia-l40s",
    "nvidia-rtx-4090",
    "nvidia-h200",
    "amd-mi300x",
    "amd-mi250x",
}

# At least one model of each of these vendors (slug prefixes).
REQUIRED_VENDOR_PREFIXES = [
    "enflame-",
    "iluvatar-",
    "metax-",
    "moore-threads-",
    "biren-",
    "intel-gaudi",
]

BY_ID = {row["id"]: row for row in ACCELERATORS}
ROW_IDS = [str(row.get("id")) for row in ACCELERATORS]


def test_catalog_has_at_least_24_entries() -> None:
    assert len(ACCELERATORS) >= 24


def test_ids_are_unique() -> None:
    duplicates = [slug for slug, count in Counter(ROW_IDS).items() if count > 1]
    assert duplicates == []


def test_both_kinds_are_present() -> None:
    domestic = sum(1 for row in ACCELERATORS if row["domestic"] is True)
    foreign = sum(1 for row in ACCELERATORS if row["domestic"] is False)
    assert domestic >= 10
    assert foreign >= 10


def test_required_models_are_present() -> None:
    assert REQUIRED_IDS - BY_ID.keys() == set()


@pytest.mark.parametrize("prefix", REQUIRED_VENDOR_PREFIXES)
def test_required_vendors_are_present(prefix: str) -> None:
    assert any(slug.startswith(prefix) for slug in BY_ID)


def test_ascend_910b_is_domestic() -> None:
    row = BY_ID["huawei-ascend-910b"]
    assert row["domestic"] is True
    assert row["vendor"] == "Huawei"


@pytest.mark.parametrize("row", ACCELERATORS, ids=ROW_IDS)
def test_row_shape(row: dict[str, object]) -> None:
    assert set(row) == KEYS
    slug = row["id"]
    assert isinstance(slug, str)
    assert SLUG.match(slug), slug
    assert isinstance(row["vendor"], str)
    assert row["vendor"].strip()
    assert isinstance(row["model"], str)
    assert row["model"].strip()
    assert type(row["domestic"]) is bool
    source = row["source"]
    assert isinstance(source, str)
    assert source.strip()


@pytest.mark.parametrize("row", ACCELERATORS, ids=ROW_IDS)
def test_slug_starts_with_vendor(row: dict[str, object]) -> None:
    vendor = str(row["vendor"]).lower().replace(" corex", "").replace(" ", "-")
    assert str(row["id"]).startswith(vendor + "-")


@pytest.mark.parametrize("row", ACCELERATORS, ids=ROW_IDS)
def test_domestic_flag_agrees_with_vendor(row: dict[str, object]) -> None:
    vendor = row["vendor"]
    assert vendor in VENDOR_IS_DOMESTIC, f"unknown vendor {vendor!r}: add it to the table"
    assert row["domestic"] is VENDOR_IS_DOMESTIC[str(vendor)]


@pytest.mark.parametrize("row", ACCELERATORS, ids=ROW_IDS)
def test_memory_and_tflops_are_positive(row: dict[str, object]) -> None:
    memory = row["memory_gb"]
    assert type(memory) is int
    assert memory > 0

    tflops = row["bf16_tflops"]
    assert isinstance(tflops, str)
    assert DECIMAL_TEXT.match(tflops), tflops
    try:
        value = Decimal(tflops)
    except InvalidOperation:  # pragma: no cover - the regex already ruled it out
        pytest.fail(f"not a decimal: {tflops!r}")
    assert value > 0
    # Same order of magnitude as real parts: guards against a sparse or PFLOPS slip.
    assert Decimal("1") <= value < Decimal("5000")
