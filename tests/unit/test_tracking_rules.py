"""Pure rules of the tracker (partners.tracking): the destination keeps its own query."""

import pytest

from partners.tracking import with_query_param


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://shop.example/", "https://shop.example/?rp_ref=a%3Ab+c"),
        ("https://shop.example/p", "https://shop.example/p?rp_ref=a%3Ab+c"),
        ("https://shop.example/?x=1&y=", "https://shop.example/?x=1&y=&rp_ref=a%3Ab+c"),
        ("https://shop.example/?rp_ref=old&x=1", "https://shop.example/?x=1&rp_ref=a%3Ab+c"),
        ("https://shop.example/#top", "https://shop.example/?rp_ref=a%3Ab+c#top"),
        ("https://shop.example/?", "https://shop.example/?rp_ref=a%3Ab+c"),
    ],
    ids=["bare", "path", "query-kept", "old-value-replaced", "fragment-kept", "empty-query"],
)
def test_with_query_param(url, expected):
    assert with_query_param(url, "rp_ref", "a:b c") == expected
