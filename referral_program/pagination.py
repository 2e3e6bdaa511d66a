"""The API's pagination: `?limit=&offset=` as DRF's, with a largest page.

DRF's `LimitOffsetPagination` takes any `limit` by default; one past PostgreSQL's bigint
(`?limit=43747065342951719698432`, found by the API fuzzing) answered 500, and a merely
large one would load a whole table. A larger limit is cut to `max_limit`. (An offset past
the end answers an empty page before any query.)
"""

from rest_framework.pagination import LimitOffsetPagination


class Pagination(LimitOffsetPagination):
    max_limit = 1000  # the default page is REST_FRAMEWORK["PAGE_SIZE"]
