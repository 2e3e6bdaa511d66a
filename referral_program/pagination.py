"""The API's pagination: `?limit=&offset=` as DRF's, with a largest page and strict values.

DRF's `LimitOffsetPagination` takes any `limit` by default; one past PostgreSQL's bigint
(`?limit=43747065342951719698432`, found by the API fuzzing) answered 500, and a merely
large one would load a whole table. A larger limit is cut to `max_limit`. (An offset past
the end answers an empty page before any query.)

DRF also reads a `limit` or `offset` that is not a number (`?offset=null`, `?limit=`, a
negative one) as if it were left out, and the last of several; the schema says each is one
integer (limit at least 1, offset at least 0), so anything else answers 400 naming the
parameter, as a filter's bad value does (found by `schemathesis --checks all`).
"""

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination

NOT_AN_INTEGER = "A whole number of at least {least} is required."
ONCE = "Give it once."


def _count(request, name: str, *, least: int, default: int | None) -> int | None:
    """The parameter's one value as a whole number of at least `least`, or the default."""
    values = request.query_params.getlist(name)
    if not values:
        return default
    if len(values) > 1:
        raise ValidationError({name: [ONCE]})
    value = values[0]
    if not (value.isascii() and value.isdigit()) or int(value) < least:
        raise ValidationError({name: [NOT_AN_INTEGER.format(least=least)]})
    return int(value)


class Pagination(LimitOffsetPagination):
    max_limit = 1000  # the default page is REST_FRAMEWORK["PAGE_SIZE"]

    def get_limit(self, request) -> int | None:
        limit = _count(request, self.limit_query_param, least=1, default=self.default_limit)
        return min(limit, self.max_limit) if limit is not None else None

    def get_offset(self, request) -> int:
        return _count(request, self.offset_query_param, least=0, default=0)

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        least = {self.limit_query_param: 1, self.offset_query_param: 0}
        for parameter in parameters:
            if parameter["name"] in least:
                parameter["schema"]["minimum"] = least[parameter["name"]]
        return parameters
