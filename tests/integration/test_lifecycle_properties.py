"""The commission lifecycle's invariants under any sequence of events (issue 17, SPEC §11).

Orders, refunds, early approvals, rejections, time passing (time-machine) and payouts in
any order: no partner is ever paid more than they were credited net (earned less clawbacks
and rejections) when paid, a payout pays no more than the payable balance, and at every
step pending + payable + paid equals what was credited net, to the cent.
"""

from contextlib import suppress
from datetime import date, timedelta
from decimal import Decimal

import time_machine
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from commissions.aggregates import money_sum
from commissions.ledger import ledger_totals
from commissions.lifecycle import commissions_approve, commissions_reject
from commissions.models import Commission, CommissionEntry, Order, Payment
from commissions.money import ZERO
from commissions.payouts import payout_batch_create
from commissions.services.orders import order_record
from commissions.services.refunds import refund_record
from partners.services.defaults import defaults_update
from tests.conftest import FIXED_NOW
from tests.factories import PartnerFactory, ProgramFactory

D = Decimal

STEPS = st.one_of(
    st.tuples(st.just("order"), st.integers(min_value=1, max_value=100_000)),
    st.tuples(st.just("refund"), st.integers(min_value=0), st.integers(1, 4)),
    st.tuples(st.just("approve"), st.integers(min_value=0)),
    st.tuples(st.just("reject"), st.integers(min_value=0)),
    st.tuples(st.just("time"), st.integers(min_value=1, max_value=20)),
    st.tuples(st.just("payout"), st.sampled_from(["balance_plus_earned", "earned_in_range"])),
)


def credited_net(partner_id: int) -> Decimal:
    """Earned less clawbacks and rejections: every ledger entry of the partner, summed."""
    return Commission.objects.filter(partner_id=partner_id).aggregate(t=money_sum("amount"))["t"]


def paid(partner_id: int) -> Decimal:
    return Payment.objects.filter(partner_id=partner_id).aggregate(t=money_sum("amount"))["t"]


class LifecycleProperties(TestCase):
    def setUp(self):
        defaults_update(
            data={"payout_percent": True, "levels": 2, "hold_days": 10}, acting_user=None
        )
        ProgramFactory(
            priority=1,
            payout_percent=True,
            levels=2,
            rates={1: {"sale_percent": D("10")}, 2: {"sale_percent": D("3.3")}},
        )
        self.parent = PartnerFactory(code="parent")
        self.seller = PartnerFactory(code="seller", parent=self.parent)
        self.partners = [self.seller.pk, self.parent.pk]

    def check(self) -> None:
        """pending + payable + paid = credited net, for every partner, now."""
        totals = ledger_totals(self.partners, start=None, end=None)
        for pk in self.partners:
            summary = totals.get((pk, "USD"))
            pending = summary.pending if summary else ZERO
            payable = summary.payable if summary else ZERO
            assert pending + payable + paid(pk) == credited_net(pk)
            assert pending >= ZERO  # a line and what takes it back wait together

    @given(steps=st.lists(STEPS, max_size=14))
    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    def test_never_paid_more_than_credited_net_and_the_figures_add_up(self, steps):
        with time_machine.travel(FIXED_NOW, tick=False) as clock:
            for n, step in enumerate(steps):
                self.run_step(n, step, clock)
                self.check()

    def run_step(self, n: int, step: tuple, clock) -> None:
        kind = step[0]
        lines = list(Commission.objects.filter(entry=CommissionEntry.COMMISSION).order_by("pk"))
        if kind == "order":
            cents = step[1]
            order_record(
                data={
                    "event_id": f"o{n}",
                    "contact": {"email": f"c{n}@example.com"},
                    "items": [{"sku": "A", "quantity": 1, "unit_price": D(cents) / 100}],
                    "sale_partner": self.seller,
                },
                payload={},
            )
        elif kind == "refund":
            orders = list(Order.objects.order_by("pk"))
            if not orders:
                return
            order = orders[step[1] % len(orders)]
            left = order.total - order.refunded
            if left <= ZERO:
                return
            amount = max(D("0.01"), (left / step[2]).quantize(D("0.01")))
            refund_record(
                data={"event_id": f"r{n}", "order_id": order.order_id, "amount": amount},
                payload={},
            )
        elif kind == "approve" and lines:
            commissions_approve(ids=[lines[step[1] % len(lines)].pk], by="prop")
        elif kind == "reject" and lines:
            # Paid, rejected already or refunded in full: refused, nothing written.
            with suppress(ValidationError):
                commissions_reject(ids=[lines[step[1] % len(lines)].pk], reason="test")
        elif kind == "time":
            clock.shift(timedelta(days=step[1]))
        elif kind == "payout":
            before = {pk: self.payable(pk) for pk in self.partners}
            today = FIXED_NOW.date() + timedelta(days=400)
            batch = payout_batch_create(start=date(2026, 1, 1), end=today, method=step[1])
            for payment in batch.payments.all():
                # At most the payable balance, and never more than credited net in all.
                assert payment.amount <= before[payment.partner_id]
                assert paid(payment.partner_id) <= credited_net(payment.partner_id)

    def payable(self, pk: int) -> Decimal:
        summary = ledger_totals([pk], start=None, end=None).get((pk, "USD"))
        return summary.payable if summary else ZERO
