"""A commission's attribution trace in plain words, for staff and partners. Pure."""

from datetime import datetime
from decimal import Decimal

from django.utils.timesince import timesince

RULE_WORDS = {"first": "first", "last": "last"}


def _before(ref_at: str | None, at: datetime, event: str) -> str:
    """ ", 3 days before the order" (nothing when unknown or not before)."""
    if not ref_at:
        return ""
    then = datetime.fromisoformat(ref_at)
    if then > at:
        return ""
    return f", {timesince(then, at, depth=1)} before {event}"


def _why(attribution: dict, at: datetime, event: str) -> str:
    source = attribution.get("source")
    rule = RULE_WORDS.get(attribution.get("rule") or "", "")
    ago = _before(attribution.get("ref_at"), at, f"the {event}")
    if source == "explicit":
        return f"the {event} named you as its partner"
    if source == "cookie":
        return f"you were the {rule} partner whose link the buyer clicked{ago}"
    if source == "history":
        return f"the buyer is in your referral history ({rule} referral{ago})"
    if source == "ip":
        return f"your link was clicked from the buyer's IP address ({rule} such click{ago})"
    if source == "subscription":
        return (
            f"the buyer's subscription began with order {attribution.get('ref')}, credited to you"
        )
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
    if "payment" in trace:
        return f"Credited because the customer paid {trace['paid']} of the order."
    if level == 1:
        why = _why(trace.get("attribution", {}), at, "order")
        rate = trace.get("rates", {}).get("rate", "")
        unused = " (pay-if-unused rate: nobody above you)" if rate == "unused" else ""
        return f"{kind.capitalize()}, level 1{unused}: credited because {why}."
    # Above level 1 the attribution was the credited partner's, not the reader's.
    theirs = _staff_why(trace.get("attribution", {}), at, "the order")
    relation = "recruited the partner" if level == 2 else "are two levels above the partner"
    return (
        f"{kind.capitalize()}, level {level}: you {relation} credited, who was credited "
        f"because {theirs}."
    )


# --- Staff phrasing -------------------------------------------------------------------------
# Staff read about a partner, not to them: "they", and "the contact" rather than "the buyer"
# (a contact may not have bought yet). Level 2 and 3 lines say whose attribution it was.

STAFF_RELATIONS = {2: "parent", 3: "grandparent"}


def _staff_why(attribution: dict, at: datetime, event: str) -> str:
    source = attribution.get("source")
    rule = RULE_WORDS.get(attribution.get("rule") or "", "")
    ago = _before(attribution.get("ref_at"), at, event)
    if source == "explicit":
        return f"{event} named them explicitly"
    if source == "cookie":
        return f"they were the {rule} partner whose link the contact clicked{ago} (tracking cookie)"
    if source == "history":
        return f"the contact is in their referral history ({rule} referral{ago})"
    if source == "ip":
        return f"their link was clicked from the contact's IP address ({rule} such click{ago})"
    if source == "subscription":
        return (
            f"{event} renews a subscription whose first order, {attribution.get('ref')}, "
            "credited them"
        )
    if source == "contact":
        # Fixed by an earlier event: say how, as of that event.
        first, fixed_at = attribution.get("first_source"), attribution.get("fixed_at")
        then = datetime.fromisoformat(fixed_at) if fixed_at else at
        how = (
            _staff_why({**attribution, "source": first}, then, "the event that fixed it")
            if first
            else ""
        )
        since = f" since {fixed_at[:10]}" if fixed_at else ""
        return f"they are the contact's lead partner{since}" + (f": {how}" if how else "")
    return "no partner could be found"


def plain_number(text: str) -> str:
    """'10.0000' -> '10', '12.5000' -> '12.5': how people write percentages."""
    return text.rstrip("0").rstrip(".") if "." in text else text


def rate_words(trace: dict) -> str:
    """E.g. "Program Gold pays 5.00 + 10 % of 1000.00 at level 1." ("" if not recorded, or
    recorded per item: `item_words`). For staff and partners alike."""
    rates = trace.get("rates") or {}
    if not rates:
        return ""
    amount, percent = rates.get("amount", "0"), rates.get("percent", "0")
    parts = []
    if amount and plain_number(amount) != "0":
        parts.append(amount)
    if percent and plain_number(percent) != "0":
        parts.append(f"{plain_number(percent)} % of {trace.get('base', '?')}")
    rate = rates.get("rate", "")
    where = ", its pay-if-unused rate" if rate == "unused" else f" at {rate}" if rate else ""
    name = (trace.get("program") or {}).get("name")
    program = f"Program {name}" if name else "The program"
    return f"{program} pays {' + '.join(parts) or 'nothing'}{where}."


# What each rate of a line's items is, in words (`calculation.ItemPay.rate`).
RATE_SOURCES = {
    "default": "the program's rate",
    "product": "the product's rate",
    "override": "your own rate",
    "renewal": "the renewal rate",
    "unused": "the rate when nobody is above you",
}
# The same for staff, who read about the partner.
STAFF_RATE_SOURCES = {
    **RATE_SOURCES,
    "override": "the partner's override",
    "unused": "the pay-if-unused rate",
}


def _pays(amount: str, percent: str, base: str, per_unit: bool) -> str:
    parts = []
    if plain_number(amount) != "0":
        parts.append(f"{amount} per unit" if per_unit else amount)
    if plain_number(percent) != "0":
        parts.append(f"{plain_number(percent)} % of {base}")
    return " + ".join(parts) or "nothing"


def item_words(trace: dict, *, staff: bool = False) -> list[str]:
    """One sentence per item of a line paid item by item (SPEC §10), e.g. "Item 2 (BOOK,
    quantity 3): the product's rate, 1.50 per unit + 5 % of 54.00.", and one for the items
    no program pays; for the partner, or (`staff`) for staff reading about the partner."""
    sources = STAFF_RATE_SOURCES if staff else RATE_SOURCES
    words = []
    for item in trace.get("items") or ():
        sku = f"{item.get('sku')}, " if item.get("sku") else ""
        pays = _pays(
            item.get("amount", "0"),
            item.get("percent", "0"),
            item.get("base", "?"),
            bool(item.get("per_unit")),
        )
        source = sources.get(item.get("rate", ""), item.get("rate", "the rate"))
        words.append(
            f"Item {item.get('item', 0) + 1} ({sku}quantity {item.get('quantity', '?')}): "
            f"{source}, {pays}."
        )
    uncovered = [
        u.get("sku") or f"item {u.get('item', 0) + 1}" for u in trace.get("uncovered") or ()
    ]
    if uncovered:
        whose = "any program" if staff else "any program of yours"
        words.append(f"Not paid by {whose}: {', '.join(uncovered)}.")
    return words


def staff_item_words(trace: dict, level: int) -> str:
    """A line paid item by item, for staff ("" for any other): "Program Books pays at level
    1, item by item. Item 1 (BOOK, quantity 2): the product's rate, 2.00 per unit + 10 % of
    57.00. Not paid by any program: LAMP, item 5." """
    if not trace.get("items"):
        return ""
    name = (trace.get("program") or {}).get("name")
    program = f"Program {name}" if name else "The program"
    return " ".join(
        [f"{program} pays at level {level}, item by item.", *item_words(trace, staff=True)]
    )


def clawback_words(trace: dict) -> str:
    """What a clawback line's trace says, for staff and partners: "refund r1 returned 25.00
    of the order's 100.00, so this line gives back the same share." """
    refunded, total = trace.get("refunded", "?"), trace.get("order_total", "?")
    if trace.get("completes_refund"):
        return (
            f"refund {trace['refund']} returned {refunded} and completed the refund of the "
            f"order's {total}, so this line gives back all that was left of it."
        )
    return (
        f"refund {trace['refund']} returned {refunded} of the order's {total}, so this line "
        "gives back the same share."
    )


def explain_details(*, trace: dict, kind: str, level: int, at: datetime) -> list[str]:
    """A commission or clawback line in sentences for its partner (the Partner Center's
    commission page): why they were credited, the rate of the line or of each item, the
    hold; for a clawback, what the refund took back. No key of the trace is shown."""
    if "refund" in trace:
        words = clawback_words(trace)
        return [words[0].upper() + words[1:]]
    sentences = [explain(trace=trace, kind=kind, level=level, at=at)]
    rate = rate_words(trace)
    sentences += [rate] if rate else item_words(trace)
    hold = trace.get("hold_days")
    if hold:
        sentences.append(f"It is held {hold} day{'s' if hold != 1 else ''} before it can be paid.")
    return sentences


def balance_words(*, balance: Decimal, clawed_after_payout: Decimal, currency: str) -> str:
    """Why a balance is below zero ("" when it is not): refunds took back commissions that
    had already been paid."""
    if balance >= 0:
        return ""
    if clawed_after_payout:
        return (
            f"Your balance is below zero because refunds took back {clawed_after_payout} "
            f"{currency} of commissions that had already been paid to you. What you earn next "
            "makes up for it before anything more is paid out."
        )
    return (
        "Your balance is below zero because more was taken back or paid than was earned. "
        "What you earn next makes up for it before anything more is paid out."
    )


def explain_attribution(*, trace: dict, at: datetime, event: str = "the order") -> str:
    """How an order's sale or lead partner (or a contact's lead partner) was found, for staff:
    "Credited because they were the last partner whose link the contact clicked, 3 days
    before the order (tracking cookie)." `event` names what `at` is the time of."""
    if not trace or trace.get("source") is None:
        return "No partner could be found."
    return f"Credited because {_staff_why(trace, at, event)}."


def explain_staff(*, trace: dict, kind: str, level: int, at: datetime, credited: str = "") -> str:
    """A commission or clawback line for staff. `credited` is the code of the partner the
    order credited (level 1 of the line's chain); `at` is when the line was made."""
    if "payment" in trace:
        paid, total = trace.get("paid", "?"), trace.get("order_total", "?")
        last = ", the last: it credits what was left" if trace.get("completes_payment") else ""
        return (
            f"Credit: the customer's payment {trace['payment']} of {paid} (order total "
            f"{total}){last}. The line of {trace.get('line', '?')} is credited as the customer "
            "pays."
        )
    if "refund" in trace:
        return f"Clawback: {clawback_words(trace)}"
    why = _staff_why(trace.get("attribution", {}), at, "the order")
    rate = rate_words(trace) or staff_item_words(trace, level)
    rate = f" {rate}" if rate else ""
    if level == 1:
        items = trace.get("items") or []
        unused = (trace.get("rates") or {}).get("rate") == "unused" or (
            bool(items) and all(item.get("rate") == "unused" for item in items)
        )
        nobody = " (pay-if-unused rate: nobody above them)" if unused else ""
        return f"{kind.capitalize()}, level 1{nobody}: credited because {why}.{rate}"
    relation = STAFF_RELATIONS.get(level, f"level {level} ancestor")
    who = f"the credited partner {credited}" if credited else "the credited partner"
    return (
        f"{kind.capitalize()}, level {level}: paid as the {relation} of {who}, who was "
        f"credited because {why}.{rate}"
    )
