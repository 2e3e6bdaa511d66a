"""Every write of the commissions engine, one module per subject.

- `contacts`: contacts (one upsert), manual referrals, referral history entries, and an
  event's contact planned and written (`event_contact`).
- `events`: the idempotent frame every event is recorded in (`event_record`, `Intake`,
  `event_result`) and what an event's rules read (`event_context`).
- `web_forms`: a web form (`web_form_record`), written as its plan says
  (`commissions.intake.web_form_plan`).
- `orders`: an order (`order_record`), written as its plan says
  (`commissions.intake.order_plan`: its credited partners, its row, its commission lines
  and its result).
- `refunds`: a refund's clawbacks (`refund_record`).
- `notifications`: the partners' notifications: decided, queued, and sent.

Import each name from its module (this package re-exports nothing).
"""
