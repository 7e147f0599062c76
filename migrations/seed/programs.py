"""The four subsidy programs seeded at start (shared/spec/policies.md, "The programs seeded at start").

Pure data in the "program as data" JSON format of policies.md: money and rates are
decimal strings, dates ISO strings, null is None. A migration imports this module, so it
must never import application code or change once a migration has used it (a later
change to a program is a new migration or an operator PATCH, never an edit here).
"""

from typing import Any

ALL_PURPOSES = ["training", "inference", "application", "maas", "agent"]

PROGRAMS: list[dict[str, Any]] = [
    {
        "id": "hz-city-compute-2024",
        "name": "杭州市算力券",
        "voucher_type": "compute",
        "level": "city",
        "status": "active",
        # 本措施自2024年8月19日起施行,有效期至2027年12月31日
        "effective_from": "2024-08-19",
        "effective_until": "2027-12-31",
        "enterprise_regions": {"include": ["3301"], "exclude": []},
        # 符合杭州市规划布局的智算中心以及纳入算力撮合的合作伙伴所供给的智能算力
        "provider_lists_any": ["hz-planned-icc", "hz-matchmaking-partner"],
        "purposes": list(ALL_PURPOSES),
        # 按不超过算力合同费用的30%给予用户企业补贴
        "base": "contract_amount",
        "rates": [
            # 依托经备案的生成式多模态基础大模型进行模型服务(MaaS)、智能体开发等应用
            {
                "rate": "0.30",
                "when": {"purposes": ["maas", "agent"], "relies_on_filed_model": True},
            },
            # 使用国产算力设施开展模型训练、推理和应用
            {"rate": "0.30", "when": {"domestic": True}},
            # 使用其他算力设施
            {"rate": "0.20", "when": {}},
        ],
        # 单家企业每年“算力券”申领不超过800万元,生成式多模态基础大模型企业可以放宽
        "enterprise_annual_cap": "8000000.00",
        "cap_relaxable_for_foundation_model_enterprises": True,
        # 每年“算力券”总额提升至2.5亿元
        "annual_budget": "250000000.00",
        "source": {"document": "001_48a3f098086869ca.txt", "clause": "（三）扩容“算力券”发放"},
    },
    {
        "id": "zj-province-compute-2025",
        "name": "浙江省算力券（杭州以外地区执行的省级框架）",
        "voucher_type": "compute",
        "level": "province",
        "status": "active",
        # This measure will be implemented from May 31, 2025, and will be effective until December 31, 2027.
        "effective_from": "2025-05-31",
        "effective_until": "2027-12-31",
        # Hangzhou runs its own program (hz-city-compute-2024).
        "enterprise_regions": {"include": ["33"], "exclude": ["3301"]},
        "provider_lists_any": [],
        "purposes": list(ALL_PURPOSES),
        # actual execution amount of the contract
        "base": "executed_amount",
        "rates": [
            {"rate": "0.30", "when": {"domestic": True}},
            {"rate": "0.10", "when": {"domestic": False}},
        ],
        # the text attaches 8 million to the 10% case; one cap for both is the conservative reading
        "enterprise_annual_cap": "8000000.00",
        "cap_relaxable_for_foundation_model_enterprises": False,
        "annual_budget": None,
        "source": {
            "document": "002_df75fc516233cf78.txt",
            "clause": "(15) Strengthen support for computing vouchers",
        },
    },
    {
        "id": "binjiang-compute-2025",
        "name": "滨江区算力券",
        "voucher_type": "compute",
        "level": "district",
        "status": "active",
        # 本意见自2025年6月10日起施行,有效期为三年
        "effective_from": "2025-06-10",
        "effective_until": "2028-06-09",
        "enterprise_regions": {"include": ["330108"], "exclude": []},
        # 租用纳入算力合作伙伴名单企业的智能算力
        "provider_lists_any": ["binjiang-compute-partner"],
        # 开展人工智能模型技术研究、产品开发、场景应用
        "purposes": list(ALL_PURPOSES),
        # 上一年度实际租用算力结算费用
        "base": "settled_amount",
        "rates": [
            {"rate": "0.60", "when": {"domestic": True}},
            {"rate": "0.30", "when": {"domestic": False}},
        ],
        # 给予单家企业最高2000万元补助
        "enterprise_annual_cap": "20000000.00",
        "cap_relaxable_for_foundation_model_enterprises": False,
        # 每年安排最高1亿元“算力券”
        "annual_budget": "100000000.00",
        "source": {"document": "004_3c587a36b5035fc0.txt", "clause": "（六）降低算力使用成本"},
    },
    {
        "id": "binjiang-hzaicc-2024-draft",
        "name": "杭州人工智能计算中心算力补贴（征求意见稿）",
        "voucher_type": "compute",
        "level": "district",
        # 本意见自2024年   月    日起施行: no start date, so never applied until activated
        "status": "draft",
        "effective_from": None,
        "effective_until": None,
        # 附则1: 在高新区（滨江）内……的企事业单位
        "enterprise_regions": {"include": ["330108"], "exclude": []},
        # 使用杭州人工智能计算中心算力资源的
        "provider_lists_any": ["hz-ai-computing-center"],
        "purposes": list(ALL_PURPOSES),
        # 按照服务合同金额的50%给予算力补贴
        "base": "contract_amount",
        "rates": [{"rate": "0.50", "when": {}}],
        # 单个主体年度补贴金额不超过100万元
        "enterprise_annual_cap": "1000000.00",
        "cap_relaxable_for_foundation_model_enterprises": False,
        "annual_budget": None,
        "source": {
            "document": "003_7d4c4575f989e82a.txt",
            "clause": "三、政策举措（2）建设算力支撑体系 3.强化算力供给",
        },
    },
]
