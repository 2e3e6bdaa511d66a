"""What the API docs (/api/docs/) say about each endpoint, written for the merchant's
developer: a summary and a description per operation, set on the schema by the
`operation_texts` hook (SPECTACULAR_SETTINGS), so the views' docstrings can stay notes for
this project's engineers. The schema test requires a text for every operation, so a new
endpoint cannot reach the docs without one.
"""

from typing import Any

API_DESCRIPTION = (
    "Send your shop's orders, refunds and web forms to the referral partner program, and "
    "read or change its partners, programs, tracking links and settings.\n\n"
    "**Authentication**: `Authorization: Bearer <key>`, with a key made under *Settings > "
    "API keys* (or `manage.py create_api_key`). Staff logged in to the site may use the API "
    "from the browser too.\n\n"
    "**Events** (`/api/v1/events/…`) are recorded once per `event_id`: sending one again "
    'answers `200` with the first answer and `"duplicate": true`, so retry freely. '
    'Amounts are decimal strings (`"19.90"`), times ISO 8601 (`occurred_at` defaults to '
    "now). Partners are named by their code, in any case; an order by its `event_id`.\n\n"
    "**Errors**: `400` with the errors per field (nothing is written), `401` without a valid "
    "key, `404` for an unknown order, partner or object, `413` for a body over 4 MiB, `415` "
    "for a body that is not JSON, `503` with `Retry-After` when the database is away (send "
    "the same event again later). Lists are pages of `limit` (100, at most 1,000) from "
    "`offset`, each a whole number given once (anything else is a `400` naming it)."
)

# Path parameters, by the path's start: what names the object.
PATH_CODES = {
    "/api/v1/partners/": "The partner's code, in any case.",
    "/api/v1/tracking-links/": "The tracking link's code.",
}

# operationId -> (summary, description).
OPERATIONS: dict[str, tuple[str, str]] = {
    "v1_events_orders_create": (
        "Record an order",
        "Send every order of your shop, as it is placed. The partners are found from the "
        "visitor's `tracking_token` (the `rp_ref` value of the partner link's cookie or "
        "query), the contact's referral history or the IP address, as the program's "
        "settings say, unless you name `sale_partner` or `lead_partner`. The answer lists "
        "the commissions it made. Shipping and tax are recorded but never earn commission.",
    ),
    "v1_events_refunds_create": (
        "Refund or cancel an order",
        "Name the order by its `event_id`. Each commission of the order is taken back in "
        "proportion to the amount refunded; leave `amount` out to refund all that is left "
        "(a cancellation). A refund above what is left is refused.",
    ),
    "v1_events_payments_create": (
        "Record a customer's payment on an order",
        "Name the order by its `event_id`. The commissions of a program that credits on "
        "customer payment are credited in proportion to the amount paid (the payment that "
        "completes the order's total credits what is left); on other orders the payment is "
        "recorded and credits nothing. A payment above what is left to pay is refused.",
    ),
    "v1_events_web_forms_create": (
        "Record a web form (a lead)",
        "Send a form a visitor filled out (a sign-up, a quote request). It records the "
        "contact and the partner who referred them, who is then credited for the lead when "
        "the contact buys. A web form earns nothing by itself.",
    ),
    "v1_commissions_list": (
        "List commissions",
        "Commission, clawback and rejection lines, oldest first, with the attribution that "
        "made each, its `status` (`pending`, `payable`, `rejected`, `paid`) and `payable_at`: "
        "filter by `partner` code, `order` (its `event_id`), `entry` or `status`.",
    ),
    "v1_commissions_retrieve": (
        "Get a commission",
        "One commission, clawback or rejection line with its base, amount, attribution "
        "trace, status and when it is payable.",
    ),
    "v1_commissions_approve_create": (
        "Approve a pending commission early",
        "A commission is pending for the hold days of its program (the refund window), then "
        "payable. Approving a pending one makes it payable now, with any clawbacks of it. "
        "Only a pending commission can be approved.",
    ),
    "v1_commissions_reject_create": (
        "Reject a commission",
        "Send `reason`. A rejection entry takes back what is left of the commission (after "
        "any refunds); the partner sees it with the reason in their ledger and is emailed "
        "unless notifications are skipped. A paid or already rejected commission cannot be "
        "rejected (a refund claws back a paid one).",
    ),
    "v1_coupons_list": (
        "List coupons",
        "Coupon codes owned by partners, in code order; filter by `partner` code or `active`.",
    ),
    "v1_coupons_create": (
        "Add a coupon",
        "`code` as your shop knows it (unique whatever the case), `partner` the owner's code. "
        "An order that carries an active coupon of an active partner is credited to that "
        "partner, ahead of the tracking cookie.",
    ),
    "v1_coupons_retrieve": ("Get a coupon", "A coupon by id."),
    "v1_coupons_update": ("Replace a coupon", "Send every field."),
    "v1_coupons_partial_update": ("Change a coupon", "Send only the fields to change."),
    "v1_coupons_destroy": (
        "Delete a coupon",
        "Orders already credited through it keep their commissions and trace.",
    ),
    "v1_defaults_retrieve": (
        "Read the program's defaults",
        "The Referral Partner Defaults: link prefix and URL, how partners are credited, how "
        "many levels are paid, what programs pay, how many days commissions are held "
        "(`hold_days`), the guards and the sign-up settings.",
    ),
    "v1_defaults_update": (
        "Replace the program's defaults",
        "Send every field (the guards and sign-up settings may be left out). Every program "
        "takes the payout settings at once; the answer says how many were updated.",
    ),
    "v1_defaults_partial_update": (
        "Change some of the program's defaults",
        "Send only the fields to change. Every program takes the payout settings at once; "
        "the answer says how many were updated.",
    ),
    "v1_simulations_create": (
        "Preview what a change would have paid (what-if replay)",
        "Replays every stored event of the range (web forms, orders, refunds, payments, in "
        "the order they were recorded, with the clicks and referral history as they stood) "
        "through the same attribution and calculation under the proposed `defaults` and "
        "`programs`, and compares with what is recorded (`now`), in total and per partner. "
        "Nothing is saved and nothing is written. `start` and `end` are days (the end day "
        "included) or ISO 8601 times (the end excluded); `?orders=changed` adds the orders "
        "whose partners or commissions change, with both traces.",
    ),
    "v1_notifications_list": (
        "List partner emails",
        "The log of the emails partners were sent about their leads and sales: queued, "
        "sent, or skipped and why.",
    ),
    "v1_notifications_retrieve": ("Get a partner email", "One entry of the email log."),
    "v1_partners_list": (
        "List partners",
        "Partners in code order; filter by `status`, `parent` code, `program` id, or `q` "
        "(part of the code, name or email). Each has `link`, their partner link.",
    ),
    "v1_partners_create": (
        "Add a partner",
        "Leave `code` out to have one made from the name. `parent` is the code of the "
        "partner who recruited them (paid at level 2).",
    ),
    "v1_partners_retrieve": ("Get a partner", "A partner by code, in any case."),
    "v1_partners_update": (
        "Replace a partner",
        "Send every field. Changing a code breaks links already handed out under the old "
        "one. Partners are never deleted: set `status` to `inactive`.",
    ),
    "v1_partners_partial_update": (
        "Change a partner",
        "Send only the fields to change. Partners are never deleted: set `status` to `inactive`.",
    ),
    "v1_partners_ledger_retrieve": (
        "Get a partner's ledger",
        "Beginning balance, commissions earned, clawbacks, payments and ending balance per "
        "currency, with every entry, for whole UTC days from `start` to `end` (all time "
        "when left out).",
    ),
    "v1_partners_rates_list": (
        "List a partner's overrides",
        "The partner's own rates, by program, level and sku: each replaces the "
        "program's rates when the partner is paid at that level for items of that program "
        "(of `sku`, or every item when it is null).",
    ),
    "v1_partners_rates_create": (
        "Add an override",
        "`program` id, `level` 1 to 3, `sku` (null: every item) and the four rates (0 when "
        "left out). One per program, sku and level; one for a sku beats one for every item. "
        "A rate for a sku pays its amount per unit; one for every item once per line.",
    ),
    "v1_partners_rates_retrieve": ("Get an override", "One of the partner's overrides by id."),
    "v1_partners_rates_update": ("Replace an override", "Send every field."),
    "v1_partners_rates_partial_update": (
        "Change an override",
        "Send only the fields to change. Commissions already recorded keep their rates.",
    ),
    "v1_partners_rates_destroy": (
        "Delete an override",
        "Commissions already recorded keep the rates they were paid at.",
    ),
    "v1_payouts_list": ("List payout batches", "Every batch with its payments, newest first."),
    "v1_payouts_create": (
        "Pay partners",
        "Pays every partner with a positive unpaid balance (at least `minimum`) either the "
        "commissions earned from `start` to `end` or everything unpaid up to `end`, and "
        'records a payment for each. With `"draft": true` it answers a preview '
        '(`status: "draft"`, who would get what and who is `left_out` and why) that '
        "records nothing until you confirm it; a draft leaves out partners without payout "
        "details (`require_payout_details` does the same for a batch recorded at once). "
        "Download the batch's files for your bank, PayPal or Wise from the staff pages.",
    ),
    "v1_payouts_retrieve": ("Get a payout batch", "One batch with its payments."),
    "v1_payouts_destroy": (
        "Delete a draft payout batch",
        "Throws a draft away (it had recorded nothing). A confirmed batch cannot be deleted: 400.",
    ),
    "v1_payouts_confirm_create": (
        "Confirm a draft payout batch",
        "Records the draft's payments exactly as previewed. When what partners are owed "
        "changed since the preview, nothing is recorded and the answer is `409`: delete the "
        "draft and make a new one to see the new amounts.",
    ),
    "v1_payouts_payments_paid_create": (
        "Mark a payment paid",
        "Records the bank's or PayPal's `reference` for one payment of a confirmed batch.",
    ),
    "v1_payouts_payments_failed_create": (
        "Mark a payment failed",
        "The payment did not reach the partner (also after it was marked paid): its amount "
        "goes back on the partner's balance, to be paid by a later batch. `reference`: why.",
    ),
    "v1_programs_list": (
        "List programs",
        "Commission programs and their rates per level, lowest priority first (the lowest "
        "is the default for partners without one).",
    ),
    "v1_programs_create": (
        "Add a program",
        "Rates per level for leads and sales, as an amount and a percentage; the payout "
        "settings come from the defaults.",
    ),
    "v1_programs_retrieve": ("Get a program", "One program with its rates."),
    "v1_programs_update": (
        "Replace a program",
        "Send every field. Commissions already recorded keep the rates they were made with.",
    ),
    "v1_programs_partial_update": (
        "Change a program",
        "Send only the fields to change. Commissions already recorded keep the rates they "
        "were made with.",
    ),
    "v1_programs_versions_list": (
        "List a program's versions",
        "Every change of the program's pay terms (rates, product rates, payout settings, "
        "also by a save of the defaults) made a new version: its terms from then on, when, "
        "and who made it (a staff user, or `api key NAME`). The latest first. Each "
        "commission's `program_version` names the version it was worked out with: editing "
        "a program never changes commissions already recorded.",
    ),
    "v1_referrals_list": (
        "List referral history entries",
        "Which partners are known to have referred each contact, and how (cookie, IP "
        "address, or added by hand); filter by `email` or `partner` code.",
    ),
    "v1_referrals_create": (
        "Add a referral by hand",
        "Credit a partner for a contact they referred by phone or email: later orders of "
        "that contact can be attributed to them.",
    ),
    "v1_tracking_links_list": (
        "List tracking links",
        "Destinations on your site that partner links can point to.",
    ),
    "v1_tracking_links_create": (
        "Add a tracking link",
        "A code and a destination URL; partner links then look like "
        "`/go/<link code>/<partner code>/`.",
    ),
    "v1_tracking_links_retrieve": ("Get a tracking link", "One tracking link by code."),
    "v1_tracking_links_update": ("Replace a tracking link", "Send every field."),
    "v1_tracking_links_partial_update": (
        "Change a tracking link",
        "Send only the fields to change.",
    ),
}


def operation_texts(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the API's and every operation's texts. An
    operation missing from OPERATIONS keeps its view's text (the schema test fails on it)."""
    result["info"]["description"] = API_DESCRIPTION
    for path, methods in result.get("paths", {}).items():
        code_text = next((text for start, text in PATH_CODES.items() if path.startswith(start)), "")
        for operation in methods.values():
            if not isinstance(operation, dict):
                continue
            texts = OPERATIONS.get(operation.get("operationId", ""))
            if texts is not None:
                operation["summary"], operation["description"] = texts
            for parameter in operation.get("parameters", []):
                if code_text and parameter.get("in") == "path" and parameter.get("name") == "code":
                    parameter["description"] = code_text
                    parameter.get("schema", {}).pop("description", None)
    return result
