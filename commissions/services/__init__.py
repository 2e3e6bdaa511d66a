"""Every write of the commissions engine, one module per subject.

- `contacts`: contacts (one upsert), manual referrals, referral history entries, and the
  contact's lead partner fixed at its first attribution.
- `events`: the idempotent frame every event is recorded in (`event_record`, `Intake`,
  `event_result`) and what an event's rules read (`event_context`).
- `web_forms`: a web form's lead (`web_form_record`) and its row and result.
- `orders`: an order (`order_record`): its credited partners, its row, its commission lines
  and its result.
- `refunds`: a refund's clawbacks (`refund_record`).
- `notifications`: the partners' notifications: decided, queued, and sent.

Import each name from its module (this package re-exports nothing).
"""
