"""The what-if replay's key property (SPEC §13): with the settings unchanged, a replay of any
range of any stream of events equals what is recorded, to the cent, per partner.

Each example records a random stream through the API, one event an hour: clicks (stored,
with an IP address, and carried in a browser's signed token), web forms and orders (with or
without a token, an explicit partner, a coupon), refunds and customer payments of earlier
orders; under a random policy (first or last partner, cookies or history and cookies, the IP
address or not) and two programs, one of which credits on customer payment. Then it replays
a random range of the stream.
"""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase
from rest_framework.test import APIClient

from commissions.models import Order
from commissions.replay import simulation_run
from partners.models import Click, Coupon, CreditOn
from partners.services.api_keys import api_key_create
from partners.services.defaults import defaults_update
from partners.services.enrollment import partner_set_programs
from partners.tokens import TokenClick, encode_token
from tests.factories import PartnerFactory, ProgramFactory

D = Decimal
T0 = datetime(2026, 9, 1, 9, tzinfo=UTC)
BROWSERS = 2
EMAILS = 2
PARTNERS = 5

CLICK = st.tuples(st.just("click"), st.integers(0, PARTNERS - 1), st.integers(0, BROWSERS - 1))
ORDER = st.tuples(
    st.just("order"), st.integers(0, EMAILS - 1), st.integers(-1, BROWSERS - 1),
    st.integers(-1, PARTNERS - 1), st.integers(100, 50_000), st.booleans(),
)  # fmt: skip
STEP = st.one_of(  # orders and clicks twice as often as the rest
    CLICK,
    CLICK,
    ORDER,
    ORDER,
    st.tuples(
        st.just("form"), st.integers(0, EMAILS - 1), st.integers(-1, BROWSERS - 1),
        st.integers(-1, PARTNERS - 1),
    ),
    st.tuples(st.just("refund"), st.integers(0, 20), st.integers(1, 4)),
    st.tuples(st.just("payment"), st.integers(0, 20), st.integers(1, 4)),
)  # fmt: skip
POLICY = st.tuples(
    st.sampled_from(["first", "last"]),
    st.sampled_from(["cookie", "history_and_cookies"]),
    st.booleans(),
)


class ReplayEqualsWhatIsRecorded(TestCase):
    def setUp(self):
        defaults_update(
            data={"levels": 3, "payout_on_lead": True, "payout_on_sale": True,
                  "payout_amount": True, "payout_percent": True},
            acting_user=None,
        )  # fmt: skip
        common = {"levels": 3, "payout_on_lead": True, "payout_on_sale": True,
                  "payout_amount": True, "payout_percent": True}  # fmt: skip
        ProgramFactory(
            priority=1, **common,
            rates={1: {"sale_percent": D("10"), "sale_amount": D("1"), "lead_percent": D("2")},
                   2: {"sale_percent": D("5"), "lead_amount": D("0.50")},
                   3: {"sale_percent": D("1.5")}},
        )  # fmt: skip
        on_payment = ProgramFactory(
            priority=2, credit_on=CreditOn.PAYMENT, **common,
            rates={1: {"sale_percent": D("12.5"), "lead_percent": D("3")},
                   2: {"sale_percent": D("3.3")}},
        )  # fmt: skip
        top = PartnerFactory(code="top")
        mid = PartnerFactory(code="mid", parent=top)
        self.partners = [
            PartnerFactory(code="p0", parent=mid),
            PartnerFactory(code="p1", parent=top),
            PartnerFactory(code="p2"),
            mid,
            top,
        ]
        partner_set_programs(partner=self.partners[1], programs=[on_payment])
        Coupon.objects.create(code="SAVE", partner=self.partners[2])
        _, key = api_key_create(name="shop")
        self.api = APIClient()
        self.api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")

    @given(policy=POLICY, steps=st.lists(STEP, min_size=4, max_size=16), data=st.data())
    @settings(
        max_examples=60,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    def test_a_replay_with_unchanged_settings_equals_what_is_recorded(self, policy, steps, data):
        selection, method, use_ip = policy
        defaults_update(
            data={"partner_selection": selection, "tracking_method": method,
                  "use_ip_address": use_ip},
            acting_user=None,
        )  # fmt: skip
        self.record(steps)
        first = data.draw(st.integers(0, len(steps) - 1), label="first step replayed")
        last = data.draw(st.integers(first, len(steps) - 1), label="last step replayed")
        start, end = T0 + timedelta(hours=first), T0 + timedelta(hours=last + 1)

        answer = simulation_run(start=start, end=end)

        differ = [p for p in answer["partners"] if p["now"] != p["proposed"]]
        assert differ == [], (policy, steps, first, last, answer)
        assert answer["total_now"] == answer["total_proposed"]
        assert answer["orders_changing_partner"] == 0
        assert (answer["not_replayed"], answer["refused"]) == (0, 0)

    def record(self, steps: list[tuple]) -> None:
        tokens: dict[int, list[TokenClick]] = {}
        for n, step in enumerate(steps):
            at = T0 + timedelta(hours=n, minutes=30)
            kind = step[0]
            if kind == "click":
                partner, browser = self.partners[step[1]], step[2]
                click = TokenClick(click_id=uuid.uuid4(), partner_id=partner.pk, at=at)
                Click.objects.create(id=click.click_id, partner=partner, at=at, ip=ip(browser))
                earlier = tokens.get(browser, [])
                tokens[browser] = [earlier[0], click] if earlier else [click]
                continue
            if kind in ("form", "order"):
                email, browser, named = step[1], step[2], step[3]
                body = {
                    "event_id": f"{kind}-{n}",
                    "occurred_at": at.isoformat(),
                    "contact": {"email": f"buyer{email}@example.com"},
                }
                if browser >= 0:
                    body["ip"] = ip(browser)
                    if tokens.get(browser):
                        body["tracking_token"] = encode_token(tokens[browser])
                if kind == "form":
                    if named >= 0:
                        body["lead_partner"] = self.partners[named].code
                    path = "/api/v1/events/web-forms/"
                else:
                    cents, coupon = step[4], step[5]
                    body["currency"] = "USD"
                    body["items"] = [{"sku": "A", "quantity": 1, "unit_price": str(D(cents) / 100)}]
                    if named >= 0:
                        body["sale_partner"] = self.partners[named].code
                    if coupon:
                        body["coupon"] = "save"
                    path = "/api/v1/events/orders/"
            else:
                orders = list(Order.objects.order_by("pk"))
                if not orders:
                    continue
                order = orders[step[1] % len(orders)]
                left = order.total - (order.paid if kind == "payment" else order.refunded)
                amount = (left / step[2]).quantize(D("0.01"))
                if amount <= 0:
                    continue
                body = {"event_id": f"{kind}-{n}", "order_id": order.order_id,
                        "amount": str(amount), "occurred_at": at.isoformat()}  # fmt: skip
                path = f"/api/v1/events/{kind}s/"
            response = self.api.post(path, body, format="json")
            assert response.status_code in (200, 201, 400), response.content


def ip(browser: int) -> str:
    return f"203.0.113.{10 + browser}"
