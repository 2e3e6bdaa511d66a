"""The partners app's JSON API resources (SPEC §6): defaults, partners, programs, links.

Views stay thin: a serializer validates, a `partners.services` function writes, the
serializer renders the result. Nothing is ever deleted through the API: partners,
programs and tracking links carry history (clicks, commissions, handed-out links).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property

import django_filters
from django import forms
from django.contrib.auth import get_permission_codename
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q, QuerySet
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.settings import api_settings

from .models import (
    ApiKey,
    Coupon,
    Partner,
    PartnerOverride,
    PartnerStatus,
    Program,
    ReferralDefaults,
    TrackingLink,
)
from .selectors import (
    coupons_list,
    defaults_get,
    partner_by_code,
    partner_ids_by_code,
    partner_overrides,
    partners_list,
    program_versions,
    programs_list,
    programs_with_rates,
)
from .serializers import (
    CouponSerializer,
    DefaultsSavedSerializer,
    DefaultsSerializer,
    PartnerOverrideSerializer,
    PartnerSerializer,
    ProgramSerializer,
    ProgramVersionSerializer,
    TrackingLinkSerializer,
)
from .services.coupons import coupon_delete, coupon_save
from .services.defaults import defaults_update
from .services.links import tracking_link_save
from .services.overrides import partner_override_delete, partner_override_save
from .services.partners import partner_create, partner_update
from .services.programs import program_create, program_update, program_update_arguments


class ApiKeySchema(OpenApiAuthenticationExtension):
    """Describes `partners.api_auth.ApiKeyAuthentication` in the OpenAPI schema.

    drf-spectacular registers the extension when this module is imported, which the
    API's URLs do.
    """

    target_class = "partners.api_auth.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            **build_bearer_security_scheme_object(
                header_name="Authorization", token_prefix="Bearer"
            ),
            "description": "A key made with `python manage.py create_api_key --name NAME`, "
            "sent as `Authorization: Bearer <key>`.",
        }


@contextmanager
def service_errors() -> Iterator[None]:
    """Answer a service's ValidationError as a 400 with the errors per field."""
    try:
        yield
    except DjangoValidationError as error:
        detail = serializers.as_serializer_error(error)
        if NON_FIELD_ERRORS in detail:
            detail[api_settings.NON_FIELD_ERRORS_KEY] = detail.pop(NON_FIELD_ERRORS)
        raise serializers.ValidationError(detail) from error


def request_actor(request) -> dict:
    """Who writes, as the services take it: the logged-in staff user, or the API key's name
    (`acting_user`, `actor`), for the histories (defaults changes, program versions)."""
    key = request.auth if isinstance(request.auth, ApiKey) else None
    if key is not None:
        return {"acting_user": None, "actor": f"api key {key.name}"}
    return {"acting_user": request.user, "actor": "system"}


class ModelWritePermission:
    """Session writes need Django's add (POST) or change right on `permission_model`.

    `partners.api_auth.IsStaffOrApiKey` reads `write_permission`; API keys may write.
    """

    permission_model: type

    @property
    def write_permission(self) -> str:
        opts = self.permission_model._meta
        action = "add" if self.request.method == "POST" else "change"
        return f"{opts.app_label}.{get_permission_codename(action, opts)}"


# --- Referral Partner Defaults -------------------------------------------------------


class DefaultsView(generics.GenericAPIView):
    """The Referral Partner Defaults (SPEC §2).

    A write copies the structural fields onto every program and answers how many
    program records it updated; it is kept in the defaults' change history.
    """

    serializer_class = DefaultsSerializer
    write_permission = "partners.change_referraldefaults"
    filter_backends = ()
    pagination_class = None

    def get_object(self) -> ReferralDefaults:
        """The singleton (DRF's OPTIONS asks for it to describe PUT)."""
        return defaults_get()

    def get(self, request):
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(responses=DefaultsSavedSerializer)
    def put(self, request):
        return self._save(request, partial=False)

    @extend_schema(responses=DefaultsSavedSerializer)
    def patch(self, request):
        return self._save(request, partial=True)

    def _save(self, request, *, partial: bool) -> Response:
        serializer = self.get_serializer(self.get_object(), data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            result = defaults_update(data=serializer.validated_data, **request_actor(request))
        saved = DefaultsSavedSerializer(
            defaults_get(),
            context={**self.get_serializer_context(), "programs_updated": result.programs_updated},
        )
        return Response(saved.data)


# --- Partners ----------------------------------------------------------------------------


class IdFilter(django_filters.NumberFilter):
    """A whole number, e.g. a program id (NumberFilter would take 1.5), that an id column
    can hold (a bigint; the schema says so): a larger one answers 400."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(*args, **kwargs)


class PartnerFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=PartnerStatus.choices)
    parent = django_filters.CharFilter(
        method="filter_parent", label="Code of the parent partner (any case)."
    )
    program = IdFilter(field_name="program", label="Program id.")
    search = django_filters.CharFilter(
        method="filter_search", label="Part of the code, name or email (any case)."
    )

    class Meta:
        model = Partner
        fields = ("status", "parent", "program", "search")

    def filter_parent(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(parent__in=partner_ids_by_code(value))

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(
            Q(code__icontains=value) | Q(name__icontains=value) | Q(email__icontains=value)
        )


class PartnerViewSet(
    ModelWritePermission,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Referral partners, named by code (any case). `link` is their default partner URL."""

    queryset = Partner.objects.none()  # for the schema; get_queryset() is what is served
    serializer_class = PartnerSerializer
    filterset_class = PartnerFilter
    lookup_field = "code"
    permission_model = Partner

    def get_queryset(self) -> QuerySet[Partner]:
        return partners_list().prefetch_related("programs")

    def get_object(self) -> Partner:
        partner = generics.get_object_or_404(self.get_queryset().by_code(self.kwargs["code"]))
        self.check_object_permissions(self.request, partner)
        return partner

    @cached_property
    def defaults(self) -> ReferralDefaults:
        """Read once per request, however many partners get a `link`."""
        return defaults_get()

    def get_serializer_context(self) -> dict:
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False):
            context["defaults"] = self.defaults
        return context

    def perform_create(self, serializer: PartnerSerializer) -> None:
        data = dict(serializer.validated_data)
        programs = data.pop("programs", None)
        with service_errors():
            partner = partner_create(data=data, programs=programs)
        serializer.instance = self.get_queryset().get(pk=partner.pk)

    def perform_update(self, serializer: PartnerSerializer) -> None:
        data = dict(serializer.validated_data)
        programs = data.pop("programs", None)
        with service_errors():
            partner = partner_update(partner=serializer.instance, data=data, programs=programs)
        serializer.instance = self.get_queryset().get(pk=partner.pk)


PARTNER_CODE_PARAMETER = OpenApiParameter(
    "code", str, OpenApiParameter.PATH, description="The partner's code (any case)."
)


@extend_schema_view(
    **{
        action: extend_schema(parameters=[PARTNER_CODE_PARAMETER])
        for action in ("list", "create", "retrieve", "update", "partial_update", "destroy")
    }
)
class PartnerOverrideViewSet(ModelWritePermission, viewsets.ModelViewSet):
    """A partner's overrides: their own rates for a program at one level, for one sku or
    every item, replacing the program's when they are paid at that level. Unique per
    (program, sku, level); an unknown partner answers 404."""

    # SPEC §10 "Partner overrides"; the docstring above is the API's documentation.

    queryset = PartnerOverride.objects.none()  # for the schema; get_queryset() is served
    serializer_class = PartnerOverrideSerializer
    permission_model = PartnerOverride
    filter_backends = ()

    @property
    def write_permission(self) -> str:
        if self.request.method == "DELETE":
            return "partners.delete_partneroverride"
        return super().write_permission

    def initial(self, request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        self.partner  # an unknown partner is 404 before the body is read  # noqa: B018

    @cached_property
    def partner(self) -> Partner:
        partner = partner_by_code(self.kwargs["code"]).first()
        if partner is None:
            raise NotFound({"code": [f"No partner has the code {self.kwargs['code']}."]})
        return partner

    def get_queryset(self) -> QuerySet[PartnerOverride]:
        if getattr(self, "swagger_fake_view", False):
            return PartnerOverride.objects.none()
        return partner_overrides(self.partner)

    def perform_create(self, serializer: PartnerOverrideSerializer) -> None:
        override = PartnerOverride(partner=self.partner, **serializer.validated_data)
        with service_errors():
            serializer.instance = partner_override_save(override=override)

    def perform_update(self, serializer: PartnerOverrideSerializer) -> None:
        override = serializer.instance
        for name, value in serializer.validated_data.items():
            setattr(override, name, value)
        with service_errors():
            serializer.instance = partner_override_save(override=override)

    def perform_destroy(self, instance: PartnerOverride) -> None:
        partner_override_delete(override=instance)


# --- Programs ------------------------------------------------------------------------------


class ProgramViewSet(
    ModelWritePermission,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Commission programs and their rates. The structural fields follow the defaults."""

    queryset = Program.objects.none()  # for the schema; get_queryset() is what is served
    serializer_class = ProgramSerializer
    permission_model = Program

    def get_queryset(self) -> QuerySet[Program]:
        return programs_with_rates()

    def perform_create(self, serializer: ProgramSerializer) -> None:
        data = dict(serializer.validated_data)
        rates = data.pop("rates", ())
        product_rates = data.pop("product_rates", ())
        renewal_rates = data.pop("renewal_rates", None)
        with service_errors():
            program = program_create(
                data=data,
                rates=rates,
                product_rates=product_rates,
                renewal_rates=renewal_rates,
                **request_actor(self.request),
            )
        serializer.instance = self.get_queryset().get(pk=program.pk)

    def perform_update(self, serializer: ProgramSerializer) -> None:
        with service_errors():
            program = program_update(
                program=serializer.instance,
                **program_update_arguments(serializer.validated_data),
                **request_actor(self.request),
            )
        serializer.instance = self.get_queryset().get(pk=program.pk)

    @extend_schema(responses=ProgramVersionSerializer(many=True))
    @action(detail=True, methods=["get"], serializer_class=ProgramVersionSerializer)
    def versions(self, request, pk=None, format=None) -> Response:
        """The program's versions, the latest first: every change of its pay
        terms (rates, product rates, flags) and every defaults save that changed its flags
        made one, with the terms from then on, when, and who made it. A commission's
        `program_version` names one of them."""
        program = generics.get_object_or_404(programs_list(), pk=pk)
        page = self.paginate_queryset(program_versions(program.pk))
        return self.get_paginated_response(ProgramVersionSerializer(page, many=True).data)


# --- Tracking links ----------------------------------------------------------------------


class CouponFilter(django_filters.FilterSet):
    partner = django_filters.CharFilter(method="filter_partner", help_text="A partner code.")

    class Meta:
        model = Coupon
        fields = ("partner", "active")

    def filter_partner(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(partner__in=partner_ids_by_code(value))


class CouponViewSet(ModelWritePermission, viewsets.ModelViewSet):
    """Partners' coupon codes (SPEC §11): an order carrying one credits its partner."""

    queryset = coupons_list()
    serializer_class = CouponSerializer
    filterset_class = CouponFilter
    permission_model = Coupon

    @property
    def write_permission(self) -> str:
        if self.request.method == "DELETE":
            return "partners.delete_coupon"
        return super().write_permission

    def perform_create(self, serializer: CouponSerializer) -> None:
        with service_errors():
            serializer.instance = coupon_save(coupon=Coupon(**serializer.validated_data))

    def perform_update(self, serializer: CouponSerializer) -> None:
        coupon = serializer.instance
        for name, value in serializer.validated_data.items():
            setattr(coupon, name, value)
        with service_errors():
            serializer.instance = coupon_save(coupon=coupon)

    def perform_destroy(self, instance: Coupon) -> None:
        coupon_delete(coupon=instance)


class TrackingLinkViewSet(
    ModelWritePermission,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Staff-made destinations for partner links, named by code.

    One link is the default destination: making another the default takes the flag from it.
    """

    queryset = TrackingLink.objects.all()  # the plain table: nothing to build, no selector
    serializer_class = TrackingLinkSerializer
    lookup_field = "code"
    permission_model = TrackingLink

    def perform_create(self, serializer: TrackingLinkSerializer) -> None:
        with service_errors():
            serializer.instance = tracking_link_save(link=TrackingLink(**serializer.validated_data))

    def perform_update(self, serializer: TrackingLinkSerializer) -> None:
        link = serializer.instance
        for name, value in serializer.validated_data.items():
            setattr(link, name, value)
        with service_errors():
            serializer.instance = tracking_link_save(link=link)
