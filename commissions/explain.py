"""A commission's attribution trace in plain words, for staff and partners. Pure."""

from datetime import datetime

from django.utils.timesince import timesince

RULE_WORDS = {"first": "first", "last": "last"}


def _ago(ref_at: str | None, at: datetime) -> str:
    if not ref_at:
        return ""
    then = datetime.fromisoformat(ref_at)
    if then > at:
        return ""
    return f", {timesince(then, at, depth=1)} before the {{event}}"


def _why(attribution: dict, at: datetime, event: str) -> str:
    source = attribution.get("source")
    rule = RULE_WORDS.get(attribution.get("rule") or "", "")
    ago = _ago(attribution.get("ref_at"), at).format(event=event)
    if source == "explicit":
        return f"the {event} named you as its partner"
    if source == "cookie":
        return f"you were the {rule} partner whose link the buyer clicked{ago}"
    if source == "history":
        return f"the buyer is in your referral history ({rule} referral{ago})"
    if source == "ip":
        return f"your link was clicked from the buyer's IP address ({rule} such click{ago})"
    if source == "contact":
        first = attribution.get("first_source")
        how = _why({**attribution, "source": first}, at, event) if first else ""
        fixed = attribution.get("fixed_at", "")[:10]
        since = f" since {fixed}" if fixed else ""
        return f"you are the buyer's referring partner{since}" + (f": {how}" if how else "")
    return "no partner could be found"


def explain(*, trace: dict, kind: str, level: int, at: datetime) -> str:
    """E.g. "Sale, level 1: credited because you were the last partner whose link the buyer
    clicked, 3 days before the order." `at` is when the commission was earned."""
    if "refund" in trace:
        return f"Taken back because order refund {trace['refund']} returned {trace['refunded']}."
    why = _why(trace.get("attribution", {}), at, "order")
    rate = trace.get("rates", {}).get("rate", "")
    unused = " (pay-if-unused rate: nobody above you)" if rate == "unused" else ""
    if level == 1:
        return f"{kind.capitalize()}, level 1{unused}: credited because {why}."
    relation = "recruited the partner" if level == 2 else "are two levels above the partner"
    return f"{kind.capitalize()}, level {level}: you {relation} credited, because {why}."
