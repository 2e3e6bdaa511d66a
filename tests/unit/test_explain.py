"""Attribution traces in plain words."""

from datetime import UTC, datetime

import pytest

from commissions.explain import explain

AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("trace", "kind", "level", "words"),
    [
        (
            {"attribution": {"source": "cookie", "rule": "last",
                             "ref_at": "2026-11-17T12:00:00+00:00"}, "rates": {"rate": "level 1"}},
            "sale", 1,
            "Sale, level 1: credited because you were the last partner whose link the buyer "
            "clicked, 3\xa0days before the order.",
        ),
        (
            {"attribution": {"source": "explicit", "rule": None}, "rates": {"rate": "unused"}},
            "sale", 1,
            "Sale, level 1 (pay-if-unused rate: nobody above you): credited because the order "
            "named you as its partner.",
        ),
        (
            {"attribution": {"source": "history", "rule": "first",
                             "ref_at": "2026-11-06T12:00:00+00:00"}},
            "sale", 2,
            "Sale, level 2: you recruited the partner credited, because the buyer is in your "
            "referral history (first referral, 2\xa0weeks before the order).",
        ),
        (
            {"attribution": {"source": "contact", "first_source": "cookie", "rule": "last",
                             "ref_at": "2026-11-19T12:00:00+00:00",
                             "fixed_at": "2026-11-19T13:00:00+00:00"}},
            "lead", 1,
            "Lead, level 1: credited because you are the buyer's referring partner since "
            "2026-11-19: you were the last partner whose link the buyer clicked, 1\xa0day "
            "before the order.",
        ),
        (
            {"attribution": {"source": "ip", "rule": "last",
                             "ref_at": "2026-11-20T10:00:00+00:00"}},
            "sale", 3,
            "Sale, level 3: you are two levels above the partner credited, because your link "
            "was clicked from the buyer's IP address (last such click, 2\xa0hours before the "
            "order).",
        ),
        (
            {"refund": "refund-7", "refunded": "25.00"},
            "sale", 1,
            "Taken back because order refund refund-7 returned 25.00.",
        ),
    ],
    ids=["cookie-last", "explicit-unused", "history-level-2", "contact-lead", "ip-level-3",
         "clawback"],
)  # fmt: skip
def test_explain(trace, kind, level, words):
    assert explain(trace=trace, kind=kind, level=level, at=AT) == words
