"""The API's filters: django-filter's, with each parameter given once (`FILTER_BACKEND`).

django-filter reads the last of several values (`?program=1&program=2` filters by 2); the
schema says each filter takes one value, so a parameter given twice answers 400 naming it,
as `limit` and `offset` do (referral_program.pagination). An empty value is no filter, as
in django-filter; the schema lists "" among a choice's values
(referral_program.schema_hooks.error_answers).

A yes/no filter (`?active=`) takes `true` or `false` (what the schema's boolean is written
as in an address; `True` and `False` too). django-filter's widget read anything else as no
filter (`?active=AAA` listed every row) or as a leftover spelling of Django 2.1 (`2` for
true), so anything else answers 400 naming it (issue 15's `--checks all` run). Empty is
still no filter.
"""

from django_filters import BooleanFilter
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.exceptions import ValidationError

ONCE = "Give it once."
GIVE_YES_NO = "Give true or false."
YES_NO = {"", "true", "false", "True", "False"}  # both django-filter widgets read these


class FilterBackend(DjangoFilterBackend):
    def get_filterset(self, request, queryset, view):
        filterset = super().get_filterset(request, queryset, view)
        if filterset is not None:
            repeated = {
                name: [ONCE]
                for name in filterset.base_filters
                if len(request.query_params.getlist(name)) > 1
            }
            if repeated:
                raise ValidationError(repeated)
            not_yes_no = {
                name: [GIVE_YES_NO]
                for name, declared in filterset.base_filters.items()
                if isinstance(declared, BooleanFilter)
                and request.query_params.get(name, "") not in YES_NO
            }
            if not_yes_no:
                raise ValidationError(not_yes_no)
        return filterset
