"""The intake engine: what one event's rules read, and what they decide (SPEC §4 to §5).

An event (or an import batch of them) goes through the same three steps, whichever path
brought it (the API, `commissions.services`; a file, `commissions.importing`):

1. **Read** through a `Reader` (`reader.py`): the engine settings and partner chains, the
   cookie clicks of its token, the contact's history, the clicks of its IP address. The
   API's `DatabaseReader` reads for one event (a batch of one of the selectors' batch
   reads); the importer's reader has read them for its whole batch, and adds what its
   earlier events recorded.
2. **Decide** in the pure rules: `track` (`track.py`) runs `attribution.attribute` over
   what it read; then one function per kind of event (`plan.py`: `order_plan`,
   `web_form_plan`) fixes the contact's lead partner (`attribution.contact_lead`), names
   the partners credited, pays their chains (`calculation`) and returns the event's write
   plan (`EventPlan`).
3. **Write** the plan (`commissions.services` one event in one transaction, with
   INSERT … RETURNING; the importer the plans of a batch by COPY).

A new attribution source (SPEC §11's coupon) is one rule in `attribution.py` and one read
here: a `Reader` method and its use in `track`.
"""

from .plan import EventPlan, HistoryEntry, order_plan, web_form_plan
from .reader import DatabaseReader, Reader, cookie_clicks, explicit
from .track import Tracked, looks_by_ip, needs_history, track

__all__ = [
    "DatabaseReader",
    "EventPlan",
    "HistoryEntry",
    "Reader",
    "Tracked",
    "cookie_clicks",
    "explicit",
    "looks_by_ip",
    "needs_history",
    "order_plan",
    "track",
    "web_form_plan",
]
