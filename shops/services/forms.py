"""Order forms."""

from django.db import IntegrityError, transaction

from config.exceptions import ApplicationError
from shops.models import Form, Shop

FORM_FIELDS = ("name", "slug", "description", "fields", "is_active")


def _slug_taken() -> ApplicationError:
    return ApplicationError(
        "Invalid input.", code="validation_error", fields={"slug": ["This slug is taken."]}
    )


@transaction.atomic
def form_create(*, shop: Shop, **fields) -> Form:
    """Create an order form in `shop`. Form slugs are global (public URLs): the serializer's
    check answers the common case, and the unique index decides a race — the loser gets the
    same 400 validation_error on `slug`, never an IntegrityError."""
    form = Form(shop=shop, **{k: v for k, v in fields.items() if k in FORM_FIELDS})
    try:
        with transaction.atomic():
            form.save()
    except IntegrityError:
        raise _slug_taken() from None
    return form


@transaction.atomic
def form_update(*, form: Form, **fields) -> Form:
    """Change a form; a slug taken concurrently → 400 validation_error on `slug`."""
    names = [k for k in fields if k in FORM_FIELDS]
    for name in names:
        setattr(form, name, fields[name])
    if names:
        try:
            with transaction.atomic():
                form.save(update_fields=[*names, "updated_at"])
        except IntegrityError:
            raise _slug_taken() from None
    return form
