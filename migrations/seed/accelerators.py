"""Seed rows for the accelerator catalog (imported by an Alembic migration).

One dict per accelerator model: ``id`` (slug), ``vendor``, ``model``, ``domestic``
(designed by a Chinese vendor), ``memory_gb`` (int, per card/module), ``bf16_tflops``
(a decimal string: peak dense BF16, i.e. without structured sparsity) and ``source``
(where the figure comes from, and how sure it is).

Conventions
- NVIDIA datasheets print the sparse figure with a footnote; the dense figure used
  here is half of it, as in NVIDIA's architecture whitepapers.
- For hardware whose vendor publishes no datasheet, ``source`` names the publication
  that reported the vendor figure. Where only an FP16 figure is published and the
  part runs BF16 at the FP16 rate, ``source`` says that BF16 is taken as equal.
- Figures marked "uncertain" differ between public sources; the operator keeps the
  catalog and should correct them when a vendor datasheet is available.

This module is pure data: no imports from the application, so the migration that
reads it stays reproducible.
"""

from typing import Any

ACCELERATORS: list[dict[str, Any]] = [
    # ------------------------------------------------------------------ domestic
    {
        "id": "huawei-ascend-910b",
        "vendor": "Huawei",
        "model": "Ascend 910B",
        "domestic": True,
        "memory_gb": 64,
        "bf16_tflops": "313",
        "source": (
            "Huawei publishes no per-chip datasheet; FP16 313 (910B3, 64 GB HBM2e) as "
            "reported by trade press and open hardware databases, BF16 taken as equal. "
            "Uncertain: SKU-dependent (910B1/B2 reported 376-414, commonly quoted ~320)"
        ),
    },
    {
        "id": "huawei-ascend-910b4",
        "vendor": "Huawei",
        "model": "Ascend 910B4",
        "domestic": True,
        "memory_gb": 32,
        "bf16_tflops": "280",
        "source": (
            "vendor figure as reported by trade press and cloud docs (Gitee AI, 2025): "
            "FP16 280, 32 GB; BF16 taken as equal. Uncertain"
        ),
    },
    {
        "id": "huawei-ascend-910c",
        "vendor": "Huawei",
        "model": "Ascend 910C",
        "domestic": True,
        "memory_gb": 128,
        "bf16_tflops": "780",
        "source": (
            "vendor figure as reported by TechPowerUp citing DigiTimes (2025): BF16 780, "
            "two 910B-class dies, 128 GB HBM2e. Uncertain: other reports give 752-800"
        ),
    },
    {
        "id": "cambricon-mlu370-x8",
        "vendor": "Cambricon",
        "model": "MLU370-X8",
        "domestic": True,
        "memory_gb": 48,
        "bf16_tflops": "96",
        "source": (
            "Cambricon MLU370-X8 product page (2022): FP16 96, BF16 96, INT8 256, "
            "48 GB LPDDR5, dual Siyuan 370"
        ),
    },
    {
        "id": "cambricon-mlu590",
        "vendor": "Cambricon",
        "model": "MLU590 (Siyuan 590)",
        "domestic": True,
        "memory_gb": 80,
        "bf16_tflops": "314",
        "source": (
            "not published by Cambricon; FP16/BF16 ~314 and 80 GB HBM2e as circulated "
            "in Chinese trade press (2023-2024). Uncertain: memory also reported as 96 GB"
        ),
    },
    {
        "id": "hygon-dcu-k100",
        "vendor": "Hygon",
        "model": "DCU K100-AI",
        "domestic": True,
        "memory_gb": 64,
        "bf16_tflops": "196",
        "source": (
            "Hygon DCU spec table (2024) for the K100-AI (DCU 2): BF16/FP16 196, 64 GB HBM2e. "
            "The original K100 (DCU 1) lists FP16 100 and no BF16; this row is the AI edition"
        ),
    },
    {
        "id": "kunlunxin-p800",
        "vendor": "Kunlunxin",
        "model": "P800",
        "domestic": True,
        "memory_gb": 96,
        "bf16_tflops": "345",
        "source": (
            "vendor figure as reported by Chinese tech press (2025): FP16 345, 96 GB HBM; "
            "BF16 taken as equal. Uncertain: not on a public Kunlunxin datasheet"
        ),
    },
    {
        "id": "enflame-t20",
        "vendor": "Enflame",
        "model": "CloudBlazer T20 (云燧T20)",
        "domestic": True,
        "memory_gb": 32,
        "bf16_tflops": "160",
        "source": (
            "Enflame T20 launch (WAIC 2021): TF32/FP16/BF16 160, FP32 40, INT8 320, "
            "32 GB HBM2e. Uncertain: some listings give 64 GB"
        ),
    },
    {
        "id": "iluvatar-bi-v100",
        "vendor": "Iluvatar CoreX",
        "model": "Tiangai 100 (BI-V100)",
        "domestic": True,
        "memory_gb": 32,
        "bf16_tflops": "147",
        "source": (
            "vendor figure as reported by TechPowerUp (2021): FP16/BF16 147, FP32 37, 32 GB HBM2"
        ),
    },
    {
        "id": "iluvatar-bi-v150",
        "vendor": "Iluvatar CoreX",
        "model": "Tiangai 150 (BI-V150)",
        "domestic": True,
        "memory_gb": 64,
        "bf16_tflops": "192",
        "source": (
            "Iluvatar product page (64 GB HBM2e); FP16 192 as reported in broker research "
            "(CMBI AI-chip comparison, 2024), BF16 taken as equal. Uncertain"
        ),
    },
    {
        "id": "metax-c500",
        "vendor": "MetaX",
        "model": "Xiyun C500 (曦云C500)",
        "domestic": True,
        "memory_gb": 64,
        "bf16_tflops": "280",
        "source": (
            "vendor figure as reported by Chinese tech press (2023-2024): FP16/BF16 280, "
            "INT8 560, 64 GB HBM2e. Uncertain: some sources give 240"
        ),
    },
    {
        "id": "moore-threads-mtt-s4000",
        "vendor": "Moore Threads",
        "model": "MTT S4000",
        "domestic": True,
        "memory_gb": 48,
        "bf16_tflops": "100",
        "source": (
            "Moore Threads S4000 launch (Dec 2023) as reported by Tom's Hardware and "
            "io-tech: FP16/BF16 100, FP32 25, INT8 200, 48 GB GDDR6"
        ),
    },
    {
        "id": "biren-br100",
        "vendor": "Biren",
        "model": "BR100",
        "domestic": True,
        "memory_gb": 64,
        "bf16_tflops": "1024",
        "source": (
            "Biren launch / Hot Chips 34 (2022) as reported by Tom's Hardware: BF16 1024, "
            "64 GB HBM2e; the vendor does not say whether the peak is dense"
        ),
    },
    {
        "id": "biren-br104",
        "vendor": "Biren",
        "model": "BR104",
        "domestic": True,
        "memory_gb": 32,
        "bf16_tflops": "512",
        "source": (
            "Biren launch (2022) as reported by Tom's Hardware: BF16 512, 32 GB HBM2e; "
            "the vendor does not say whether the peak is dense"
        ),
    },
    # -------------------------------------------------------------- not domestic
    {
        "id": "nvidia-a100-sxm-80gb",
        "vendor": "NVIDIA",
        "model": "A100 SXM4 80GB",
        "domestic": False,
        "memory_gb": 80,
        "bf16_tflops": "312",
        "source": "NVIDIA A100 datasheet (2021): BF16 Tensor Core 312 dense (624 with sparsity)",
    },
    {
        "id": "nvidia-a100-pcie-80gb",
        "vendor": "NVIDIA",
        "model": "A100 PCIe 80GB",
        "domestic": False,
        "memory_gb": 80,
        "bf16_tflops": "312",
        "source": "NVIDIA A100 datasheet (2021): BF16 Tensor Core 312 dense (624 with sparsity)",
    },
    {
        "id": "nvidia-a800-sxm-80gb",
        "vendor": "NVIDIA",
        "model": "A800 SXM4 80GB",
        "domestic": False,
        "memory_gb": 80,
        "bf16_tflops": "312",
        "source": ("NVIDIA A800 datasheet (2022): BF16 312 dense, as A100; NVLink cut to 400 GB/s"),
    },
    {
        "id": "nvidia-a10",
        "vendor": "NVIDIA",
        "model": "A10",
        "domestic": False,
        "memory_gb": 24,
        "bf16_tflops": "125",
        "source": "NVIDIA A10 datasheet (2021): BF16 Tensor Core 125 dense (250 with sparsity)",
    },
    {
        "id": "nvidia-a30",
        "vendor": "NVIDIA",
        "model": "A30",
        "domestic": False,
        "memory_gb": 24,
        "bf16_tflops": "165",
        "source": "NVIDIA A30 datasheet (2021): BF16 Tensor Core 165 dense (330 with sparsity)",
    },
    {
        "id": "nvidia-a40",
        "vendor": "NVIDIA",
        "model": "A40",
        "domestic": False,
        "memory_gb": 48,
        "bf16_tflops": "149.7",
        "source": "NVIDIA A40 datasheet (2021): BF16 Tensor Core 149.7 dense (299.4 with sparsity)",
    },
    {
        "id": "nvidia-h100-sxm",
        "vendor": "NVIDIA",
        "model": "H100 SXM5 80GB",
        "domestic": False,
        "memory_gb": 80,
        "bf16_tflops": "989.5",
        "source": (
            "NVIDIA H100 datasheet (2023): BF16 Tensor Core 1,979 with sparsity, "
            "989.5 dense (the Hopper whitepaper rounds it to 989.4)"
        ),
    },
    {
        "id": "nvidia-h100-pcie",
        "vendor": "NVIDIA",
        "model": "H100 PCIe 80GB",
        "domestic": False,
        "memory_gb": 80,
        "bf16_tflops": "756",
        "source": (
            "NVIDIA H100 datasheet / Hopper whitepaper (2022): BF16 756 dense (1,513 with sparsity)"
        ),
    },
    {
        "id": "nvidia-h800-sxm",
        "vendor": "NVIDIA",
        "model": "H800 SXM5 80GB",
        "domestic": False,
        "memory_gb": 80,
        "bf16_tflops": "989.5",
        "source": (
            "vendor figure as reported by Tom's Hardware (2023): H100 SXM tensor compute "
            "(BF16 989.5 dense) with NVLink cut to 400 GB/s; no public NVIDIA datasheet"
        ),
    },
    {
        "id": "nvidia-h20",
        "vendor": "NVIDIA",
        "model": "HGX H20 96GB",
        "domestic": False,
        "memory_gb": 96,
        "bf16_tflops": "148",
        "source": (
            "vendor spec as reported by Tom's Hardware (2024) from retailer listings: "
            "BF16/FP16 148 dense, 96 GB HBM3; no public NVIDIA datasheet"
        ),
    },
    {
        "id": "nvidia-h200",
        "vendor": "NVIDIA",
        "model": "H200 SXM 141GB",
        "domestic": False,
        "memory_gb": 141,
        "bf16_tflops": "989.5",
        "source": (
            "NVIDIA H200 datasheet (2024): BF16 Tensor Core 1,979 with sparsity, "
            "989.5 dense; 141 GB HBM3e"
        ),
    },
    {
        "id": "nvidia-l4",
        "vendor": "NVIDIA",
        "model": "L4",
        "domestic": False,
        "memory_gb": 24,
        "bf16_tflops": "121",
        "source": "NVIDIA L4 datasheet (2023): BF16 Tensor Core 242 with sparsity, 121 dense",
    },
    {
        "id": "nvidia-l20",
        "vendor": "NVIDIA",
        "model": "L20 48GB",
        "domestic": False,
        "memory_gb": 48,
        "bf16_tflops": "119.5",
        "source": (
            "vendor spec as reported by Tom's Hardware (2024) from retailer listings: "
            "BF16/FP16 119.5 dense, 48 GB GDDR6; no public NVIDIA datasheet"
        ),
    },
    {
        "id": "nvidia-l40",
        "vendor": "NVIDIA",
        "model": "L40",
        "domestic": False,
        "memory_gb": 48,
        "bf16_tflops": "181.05",
        "source": "NVIDIA L40 datasheet (2022): BF16 Tensor Core 181.05 dense (362.1 with sparsity)",
    },
    {
        "id": "nvidia-l40s",
        "vendor": "NVIDIA",
        "model": "L40S",
        "domestic": False,
        "memory_gb": 48,
        "bf16_tflops": "362.05",
        "source": "NVIDIA L40S datasheet (2023): BF16 Tensor Core 362.05 dense (733 with sparsity)",
    },
    {
        "id": "nvidia-rtx-4090",
        "vendor": "NVIDIA",
        "model": "GeForce RTX 4090",
        "domestic": False,
        "memory_gb": 24,
        "bf16_tflops": "165.2",
        "source": (
            "NVIDIA Ada Lovelace architecture whitepaper (2022): peak BF16 Tensor with FP32 "
            "accumulate 165.2 dense (330.4 sparse); the 330.3 figure is FP16 with FP16 "
            "accumulate, which BF16 does not have"
        ),
    },
    {
        "id": "amd-mi210",
        "vendor": "AMD",
        "model": "Instinct MI210",
        "domestic": False,
        "memory_gb": 64,
        "bf16_tflops": "181",
        "source": "AMD Instinct MI210 product page (2022): peak BF16 181 (no sparsity)",
    },
    {
        "id": "amd-mi250",
        "vendor": "AMD",
        "model": "Instinct MI250",
        "domestic": False,
        "memory_gb": 128,
        "bf16_tflops": "362.1",
        "source": "AMD Instinct MI250 product page (2021): peak BF16 362.1 (no sparsity)",
    },
    {
        "id": "amd-mi250x",
        "vendor": "AMD",
        "model": "Instinct MI250X",
        "domestic": False,
        "memory_gb": 128,
        "bf16_tflops": "383",
        "source": "AMD Instinct MI250X product page (2021): peak BF16 383 (no sparsity)",
    },
    {
        "id": "amd-mi300x",
        "vendor": "AMD",
        "model": "Instinct MI300X",
        "domestic": False,
        "memory_gb": 192,
        "bf16_tflops": "1307.4",
        "source": (
            "AMD Instinct MI300X datasheet (2023): peak BF16 1307.4 dense "
            "(2614.9 with sparsity), 192 GB HBM3"
        ),
    },
    {
        "id": "amd-mi325x",
        "vendor": "AMD",
        "model": "Instinct MI325X",
        "domestic": False,
        "memory_gb": 256,
        "bf16_tflops": "1307.4",
        "source": (
            "AMD Instinct MI325X datasheet (2024): peak BF16 1307.4 dense "
            "(2614.9 with sparsity), 256 GB HBM3E"
        ),
    },
    {
        "id": "intel-gaudi2",
        "vendor": "Intel",
        "model": "Gaudi 2",
        "domestic": False,
        "memory_gb": 96,
        "bf16_tflops": "432",
        "source": (
            "Intel Gaudi 3 presentation, Hot Chips 2024 (generation table): Gaudi 2 peak "
            "BF16 432, 96 GB HBM2e"
        ),
    },
    {
        "id": "intel-gaudi3",
        "vendor": "Intel",
        "model": "Gaudi 3",
        "domestic": False,
        "memory_gb": 128,
        "bf16_tflops": "1835",
        "source": (
            "Intel Gaudi 3 AI accelerator white paper (2024): BF16 matrix 1835, 128 GB HBM2e"
        ),
    },
]
