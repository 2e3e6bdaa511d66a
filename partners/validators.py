"""Field rules of SPEC §2 and §3, shared by models, forms and the API."""

from django.core.validators import RegexValidator, URLValidator

code_prefix_validator = RegexValidator(
    r"^[A-Za-z0-9_-]{0,16}$",
    "Use up to 16 letters, digits, hyphens or underscores (no spaces).",
)
partner_code_validator = RegexValidator(
    r"^[A-Za-z][A-Za-z0-9_-]{3,31}\Z",
    "A partner code starts with a letter and has 4 to 32 letters, digits, hyphens or underscores.",
)
tracking_link_code_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}\Z",
    "A tracking link code has 1 to 32 letters, digits, hyphens or underscores.",
)
http_url_validator = URLValidator(schemes=["http", "https"])
coupon_code_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z",
    "A coupon code has 1 to 64 letters, digits, dots, hyphens or underscores.",
)
