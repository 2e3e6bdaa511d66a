"""The webhook signature, against a value computed by `openssl dgst -sha256 -hmac` (§9)."""

from commissions.webhooks import signature

# printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac 'whsec_example'
OPENSSL = "3500e4cbdbe983dfd06e403872463b7fdd63367811622e0b0ff04bf7aa1f839f"


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body():
    header = signature(secret="whsec_example", body=b'{"a":1}', timestamp=1700000000)

    assert header == f"t=1700000000,v1={OPENSSL}"


def test_another_timestamp_or_body_signs_differently():
    base = signature(secret="whsec_example", body=b'{"a":1}', timestamp=1700000000)

    assert signature(secret="whsec_example", body=b'{"a":2}', timestamp=1700000000) != base
    assert signature(secret="whsec_example", body=b'{"a":1}', timestamp=1700000001) != base
