"""The official provider lists known at start (domain.md, "Providers and listings")."""

from typing import Any

PROVIDER_LISTS: list[dict[str, Any]] = [
    {
        "id": "hz-planned-icc",
        "name": "符合杭州市规划布局的智算中心 (intelligent computing center in Hangzhou's planning layout)",
        "source": "001_48a3f098086869ca.txt, measure (三)",
    },
    {
        "id": "hz-matchmaking-partner",
        "name": "纳入算力撮合的合作伙伴 (partner included in Hangzhou compute matchmaking)",
        "source": "001_48a3f098086869ca.txt, measure (三)",
    },
    {
        "id": "binjiang-compute-partner",
        "name": "纳入算力合作伙伴名单企业 (Binjiang compute partner list)",
        "source": "004_3c587a36b5035fc0.txt, item (六)",
    },
    {
        "id": "hz-ai-computing-center",
        "name": "杭州人工智能计算中心 (Hangzhou AI Computing Center)",
        "source": "003_7d4c4575f989e82a.txt, 二.3",
    },
]
