"""Seed figures for comparing accelerators across models (imported by an Alembic migration).

``FIGURES``: per accelerator id, the published FP16 TFLOPS, INT8 TOPS and memory
bandwidth (GB/s) where a source already cited by the catalog (``accelerators.py``)
or the vendor's datasheet states them; a figure nobody published is left out
(null), never estimated.

``perf_index`` is, for every accelerator, a **vendor-figure index**: its dense BF16
TFLOPS (the catalog's ``bf16_tflops``) divided by the reference
``nvidia-a100-sxm-80gb``'s 312, rounded to two places, the same for training and
inference. No benchmark is known to this seed for any model; ``perf_source`` says
so, and the operator replaces the index with a benchmark's (MLPerf, a cloud's own
runs) by PATCH /v1/accelerators/{id} when one is published. For inference, often
bound by memory bandwidth rather than compute, a compute ratio flatters
compute-rich, bandwidth-poor parts: the source text says that too.

Pure data and arithmetic: no imports from the application.
"""

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

REFERENCE = "nvidia-a100-sxm-80gb"
REFERENCE_BF16 = Decimal("312")

FIGURES: dict[str, dict[str, Any]] = {
    # Domestic: the FP16 and INT8 figures the catalog's sources name.
    "huawei-ascend-910b": {"fp16_tflops": 313.0},
    "huawei-ascend-910b4": {"fp16_tflops": 280.0},
    "cambricon-mlu370-x8": {"fp16_tflops": 96.0, "int8_tops": 256.0},
    "cambricon-mlu590": {"fp16_tflops": 314.0},
    "hygon-dcu-k100": {"fp16_tflops": 196.0},
    "kunlunxin-p800": {"fp16_tflops": 345.0},
    "enflame-t20": {"fp16_tflops": 160.0, "int8_tops": 320.0},
    "iluvatar-bi-v100": {"fp16_tflops": 147.0},
    "iluvatar-bi-v150": {"fp16_tflops": 192.0},
    "metax-c500": {"fp16_tflops": 280.0, "int8_tops": 560.0},
    "moore-threads-mtt-s4000": {"fp16_tflops": 100.0, "int8_tops": 200.0},
    # NVIDIA datasheets (dense figures: half the sparse ones printed).
    "nvidia-a100-sxm-80gb": {
        "fp16_tflops": 312.0,
        "int8_tops": 624.0,
        "memory_bandwidth_gbps": 2039.0,
    },
    "nvidia-h100-sxm": {
        "fp16_tflops": 989.5,
        "int8_tops": 1979.0,
        "memory_bandwidth_gbps": 3350.0,
    },
    "nvidia-h200": {"fp16_tflops": 989.5, "int8_tops": 1979.0, "memory_bandwidth_gbps": 4800.0},
    "nvidia-h20": {"fp16_tflops": 148.0},
    "nvidia-l20": {"fp16_tflops": 119.5},
}


def perf_index(bf16_tflops: str | float) -> str:
    """The vendor-figure index of a model: its BF16 TFLOPS ÷ the reference's, 2 places."""
    ratio = Decimal(str(bf16_tflops)) / REFERENCE_BF16
    return str(ratio.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def perf_source(bf16_tflops: str | float) -> str:
    return (
        f"vendor figure, no benchmark: dense BF16 {bf16_tflops} TFLOPS ÷ the A100 SXM4 "
        f"80GB's 312, for training and inference alike (inference is often bound by "
        f"memory bandwidth, which this index does not weigh)"
    )
