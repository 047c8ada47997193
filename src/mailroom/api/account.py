"""Who am I, and which record types exist."""

from ninja import Router, Schema
from ninja.responses import codes_4xx

from mailroom.api.auth import actor
from mailroom.api.errors import ErrorOut
from mailroom.api.record_routes import api_record_types
from mailroom.api.specs import spec_for
from mailroom.core.models import Company

router = Router(tags=["Account"])


class CompanyOut(Schema):
    id: int
    name: str


class MeOut(Schema):
    id: int
    username: str
    name: str
    email: str
    is_superuser: bool
    current_company_id: int | None
    companies: list[CompanyOut]
    roles: list[str]


class RecordTypeOut(Schema):
    key: str
    label: str
    label_plural: str
    slug: str
    default_alias: str
    template_fields: list[str]
    api_fields: list[str]
    has_lines: bool


@router.get("/me", response={200: MeOut, codes_4xx: ErrorOut}, operation_id="me",
            summary="The calling user, companies and roles")
def me(request):
    user = actor(request)
    companies = Company.objects.filter(pk__in=user.company_ids()).order_by("name")
    return {
        "id": user.pk,
        "username": user.get_username(),
        "name": user.get_full_name() or user.get_username(),
        "email": user.email,
        "is_superuser": user.is_superuser,
        "current_company_id": user.current_company_id,
        "companies": [{"id": c.pk, "name": c.name} for c in companies],
        "roles": sorted(user.role_names()),
    }


@router.get("/record-types", response={200: list[RecordTypeOut], codes_4xx: ErrorOut},
            operation_id="record_types", summary="Record types served under /api/v1/<slug>")
def record_types(request):
    result = []
    for record_type in api_record_types():
        spec = spec_for(record_type)
        result.append({
            "key": record_type.key,
            "label": record_type.label,
            "label_plural": record_type.label_plural,
            "slug": record_type.slug,
            "default_alias": record_type.default_alias,
            "template_fields": list(record_type.template_fields),
            "api_fields": list(spec.write_fields),
            "has_lines": spec.lines is not None,
        })
    return result
