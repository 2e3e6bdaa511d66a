"""A short memory of the tracker's lookups, per web process (issue 6).

With the click buffer on, the tracker's only database work is resolving the code to its
partner, tracking link and destinations (`selectors.tracker_target`). A campaign sends the
same few codes over and over, so each process remembers a found partner's answer for
TRACKER_MEMO_SECONDS (default 10; 0 turns it off) and then a click costs no round trip at
all. Codes that resolve to nobody are not remembered: a partner created a moment ago
counts at once.

What that costs (docs/decisions.md, "Click pipeline"): a change to a partner (turned
inactive, code renamed, cookie days), a tracking link's destination or the code prefix
reaches every web process within TRACKER_MEMO_SECONDS. A click recorded in that window for
a partner just turned inactive is stored but never credited: attribution reads each
partner's status when the event arrives.
"""

import threading
import time
from collections.abc import Callable

from django.conf import settings

from .selectors import TrackerTarget

# Past this many codes the memory starts again from empty (a flood of made-up codes that
# happen to exist cannot grow it without bound).
MAX_ENTRIES = 50_000


class TrackerMemo:
    def __init__(self) -> None:
        self._entries: dict[tuple[str, str | None], tuple[float, TrackerTarget]] = {}
        self._lock = threading.Lock()

    def target(
        self,
        *,
        code: str,
        link_code: str | None,
        lookup: Callable[[], TrackerTarget],
        seconds: float,
        now: float | None = None,
    ) -> TrackerTarget:
        """The remembered answer for (code, link_code) while younger than `seconds`, else
        `lookup()`'s, remembered when it found a partner."""
        if seconds <= 0:
            return lookup()
        now = time.monotonic() if now is None else now
        key = (code.lower(), link_code)
        found = self._entries.get(key)
        if found is not None and now - found[0] < seconds:
            return found[1]
        target = lookup()
        if target.partner_id is not None:
            with self._lock:
                if len(self._entries) >= MAX_ENTRIES:
                    self._entries.clear()
                self._entries[key] = (now, target)
        else:
            self._entries.pop(key, None)
        return target

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


memo = TrackerMemo()


def remembered_target(*, code: str, link_code: str | None, lookup: Callable[[], TrackerTarget]):
    """`lookup()`'s answer, or this process's memory of it (TRACKER_MEMO_SECONDS)."""
    return memo.target(
        code=code, link_code=link_code, lookup=lookup, seconds=settings.TRACKER_MEMO_SECONDS
    )
