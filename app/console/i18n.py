"""The console's words in Simplified Chinese (the default) and English (`?lang=en`), and
how it writes amounts and instants."""

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from app.core.timeutil import SHANGHAI

Lang = Literal["zh", "en"]

TEXT: dict[str, tuple[str, str]] = {
    "app": ("算力券管理台", "Voucher console"),
    "nav.programs": ("算力券项目", "Programs"),
    "nav.claims": ("申领审核", "Claims"),
    "nav.market": ("市场价格", "Market"),
    "nav.signout": ("退出", "Sign out"),
    "login.title": ("登录", "Sign in"),
    "login.key": ("API 密钥", "API key"),
    "login.hint": (
        "请粘贴审核员（reviewer）或运营方（operator）的 API 密钥。",
        "Paste an API key of role reviewer or operator.",
    ),
    "login.submit": ("登录", "Sign in"),
    "login.bad": ("密钥无效或已吊销。", "The key is unknown or revoked."),
    "login.wrong_role": (
        "管理台仅供算力券管理部门（审核员）和平台运营方使用，企业和服务商密钥不能登录。",
        "The console is for the voucher office (reviewers) and the operator; "
        "enterprise and provider keys cannot sign in.",
    ),
    "login.expired": (
        "表单已过期，请重新登录。",
        "The form has expired; please sign in again.",
    ),
    "signed_in_as": ("当前登录", "Signed in as"),
    "role.operator": ("运营方", "operator"),
    "role.reviewer": ("审核员", "reviewer"),
    "programs.title": ("算力券项目", "Voucher programs"),
    "programs.none": ("没有可查看的项目。", "No program to show."),
    "program": ("项目", "Program"),
    "status": ("状态", "Status"),
    "status.active": ("生效", "active"),
    "status.draft": ("草稿", "draft"),
    "status.suspended": ("暂停", "suspended"),
    "status.ended": ("已结束", "ended"),
    "rates": ("补贴比例", "Rate tiers"),
    "year": ("年度", "Year"),
    "budget": ("年度预算", "Budget"),
    "no_budget": ("不设预算", "no budget"),
    "reserved": ("已预留", "Reserved"),
    "settled": ("已结算", "Settled"),
    "claimed": ("已申领", "Claimed"),
    "approved": ("已核定", "Approved"),
    "paid": ("已兑付", "Paid"),
    "remaining": ("剩余", "Remaining"),
    "used": ("已使用", "Used"),
    "burn": ("预算消耗", "Budget burn"),
    "burn.used": ("累计预留 + 结算", "cumulative reserved + settled"),
    "burn.budget": ("预算线", "budget"),
    "burn.projection": ("线性预测", "straight-line projection"),
    "burn.meets": ("预计于 {date} 用完预算", "projected to meet the budget on {date}"),
    "burn.not_meet": ("按当前速度年内不会用完预算", "the budget lasts the year"),
    "burn.year_end": ("按此速度全年约 {amount}", "at this pace {amount} by the year's end"),
    "burn.no_data": ("本年度尚无使用", "nothing used this year yet"),
    "burn.week": ("周", "week"),
    "details": ("详情", "Details"),
    "report.by_district": ("按区县", "By district"),
    "report.by_origin": ("国产 / 非国产算力", "Domestic vs non-domestic"),
    "report.by_payer": ("按出资方", "By payer"),
    "report.top": ("前列企业", "Top enterprises"),
    "report.export": ("导出 CSV", "Export CSV"),
    "district": ("区县", "District"),
    "domestic": ("国产", "domestic"),
    "non_domestic": ("非国产", "non-domestic"),
    "origin": ("算力来源", "Hardware"),
    "card_hours": ("卡时", "Card-hours"),
    "subsidy": ("补贴", "Subsidy"),
    "payer": ("出资方", "Payer"),
    "share": ("分担比例", "Share"),
    "enterprise": ("企业", "Enterprise"),
    "credit_code": ("统一社会信用代码", "Credit code"),
    "nothing": ("暂无数据", "Nothing yet"),
    "back": ("返回", "Back"),
    "market.title": ("市场价格", "Market prices"),
    "market.index": ("价格指数（每卡时）", "Price index (per card-hour)"),
    "accelerator": ("加速卡", "Accelerator"),
    "offers": ("在售报价", "Active offers"),
    "min": ("最低", "Min"),
    "median": ("中位数", "Median"),
    "p90": ("P90", "P90"),
    "orders_30d": ("近 30 天订单", "Orders, last 30 days"),
    "count": ("数量", "Count"),
    "median_paid": ("成交中位价", "Median paid"),
    "market.chart": ("近 12 周成交中位价", "Median price paid, last 12 weeks"),
    "market.domestic_share": ("国产算力卡时占比（按月）", "Domestic share of card-hours by month"),
    "month": ("月份", "Month"),
    "market.flagged": (
        "高于指数中位数 1.5 倍的报价",
        "Offers priced above 1.5 × their index median",
    ),
    "provider": ("服务商", "Provider"),
    "price": ("价格", "Price"),
    "ratio": ("倍数", "Ratio"),
    "offer": ("报价", "Offer"),
    "error.title": ("出错了", "Something went wrong"),
    "error.not_found": ("未找到，或无权查看。", "Not found, or not yours to see."),
    "error.csrf": (
        "表单校验失败，请返回重新提交。",
        "The form could not be verified; go back and submit it again.",
    ),
    "lang.other": ("English", "中文"),
    "conditions.any": ("所有订单", "any order"),
    "conditions.domestic_true": ("国产算力", "domestic hardware"),
    "conditions.domestic_false": ("非国产算力", "non-domestic hardware"),
    "conditions.filed_model": ("依托备案大模型", "relies on a filed model"),
    "conditions.purposes": ("用途", "purposes"),
    "claims.title": ("申领审核", "Claims"),
    "claims.none": ("没有符合条件的申领。", "No claim in this list."),
    "claims.oldest": ("« 最早的", "« Oldest"),
    "claims.next": ("下一页 »", "Next page »"),
    "claim": ("申领", "Claim"),
    "claim.amount": ("申领金额", "Claimed"),
    "claim.submitted_at": ("提交时间", "Submitted"),
    "claim.checks": ("核验", "Checks"),
    "claim.round": ("轮次", "round"),
    "claim.orders": ("订单", "Orders"),
    "claim.order": ("订单", "Order"),
    "claim.window": ("使用时段", "Window"),
    "claim.cards": ("卡数", "Cards"),
    "claim.gross": ("合同金额", "Gross"),
    "claim.executed": ("实际执行", "Executed"),
    "claim.documents": ("材料", "Documents"),
    "claim.kind": ("类型", "Kind"),
    "claim.kind.contract": ("合同", "contract"),
    "claim.kind.invoice": ("发票", "invoice"),
    "claim.kind.payment": ("付款凭证", "payment"),
    "claim.kind.delivery": ("交付凭证", "delivery record"),
    "claim.kind.": ("—", "—"),
    "claim.number": ("编号", "Number"),
    "claim.doc_amount": ("金额", "Amount"),
    "claim.date": ("日期", "Date"),
    "claim.evidence": ("文件", "File"),
    "claim.review": ("审核", "Review"),
    "claim.approve": ("核定通过", "Approve"),
    "claim.return": ("退回补正", "Return for correction"),
    "claim.reject": ("不予通过", "Reject"),
    "claim.approved_amount": (
        "核定金额（留空为全额）",
        "Approved amount (empty: all of it)",
    ),
    "claim.reason": ("理由（退回或不予通过时必填）", "Reason (required to return or reject)"),
    "claim.decide": ("提交审核意见", "Record the decision"),
    "claim.disburse": ("兑付", "Disbursement"),
    "claim.pay_amount": ("兑付金额", "Amount paid"),
    "claim.paid_on": ("付款日期", "Paid on"),
    "claim.bank_reference": ("银行流水号", "Bank reference"),
    "claim.record_payment": ("登记兑付", "Record the payment"),
    "claim.decisions": ("审核与兑付记录", "Decisions and payments"),
    "claim.decision.approve": ("核定通过", "approved"),
    "claim.decision.reject": ("不予通过", "rejected"),
    "claim.decision.return": ("退回补正", "returned"),
    "claim.disbursed": ("已兑付", "paid"),
    "claim.events": ("事件链", "Event chain"),
    "claim.at": ("时间", "At"),
    "claim.actor": ("操作者", "Actor"),
    "claim.hash": ("哈希", "Hash"),
    "claim.stale": (
        "该申领已被更新，请查看最新状态后再操作。",
        "The claim has changed since this form was shown; check it again before acting.",
    ),
    "claim.status.submitted": ("待审核", "submitted"),
    "claim.status.awaiting_second_review": ("待复核", "awaiting second review"),
    "claim.status.returned": ("已退回", "returned"),
    "claim.status.approved": ("已核定", "approved"),
    "claim.status.paid": ("已兑付", "paid"),
    "claim.status.rejected": ("不予通过", "rejected"),
}


def text(lang: Lang, key: str, **values: str) -> str:
    zh, en = TEXT.get(key, (key, key))
    words = en if lang == "en" else zh
    return words.format(**values) if values else words


def money(value: Decimal | str | None) -> str:
    """¥1,234.50 (a negative amount as -¥1,234.50); an absent amount as a dash. A
    document's amount arrives as its JSON text."""
    if value is None or value == "":
        return "—"
    value = Decimal(value)
    sign = "-" if value < 0 else ""
    return f"{sign}¥{abs(value):,.2f}"


def percent(value: Decimal) -> str:
    return f"{(value * 100).normalize():f}%"


def instant(value: datetime | None) -> str:
    """An instant as its wall time in Asia/Shanghai."""
    if value is None:
        return "—"
    return value.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def day(value: date | None) -> str:
    return "—" if value is None else value.isoformat()
