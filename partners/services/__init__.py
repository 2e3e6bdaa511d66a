"""Every write of the partners app, one module per subject (import from the module:
`from partners.services.clicks import click_track`):

- `defaults`: the Referral Partner Defaults (`defaults_update`, `defaults_ensure`,
  `programs_apply_defaults`).
- `programs`: programs and their rate rows.
- `versions`: program versions (SPEC §10), made after every change of a program's pay
  terms and, in bulk, after a defaults save.
- `enrollment`: the programs a partner is enrolled in, `Partner.program` kept in sync.
- `overrides`: a partner's own rates for a program at one level (partner overrides).
- `partners`: partners (codes, create, update, bulk setters, login, profile).
- `signup`: the public sign-up, its confirmation, approval, rejection and emails.
- `access`: Partner Center access: the invitation (an email with a link to set a
  password) and revoking it.
- `links`: tracking links.
- `coupons`: coupons and their CSV import.
- `api_keys`: API keys.
- `clicks`: the tracker's click, the click buffer's drain, click flags, old IP addresses.
- `privacy`: a partner's personal data (export, erasure).
"""
