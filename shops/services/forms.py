"""Order forms."""

import re
import secrets

from anyascii import anyascii
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from config.exceptions import ApplicationError
from shops.models import Form, Shop
from shops.services.plans import shop_plan_limit_check

FORM_FIELDS = ("name", "slug", "description", "fields", "is_active")

SLUG_MAX_LENGTH = Form._meta.get_field("slug").max_length
# Room left after the base for "-<number>" or "-<6 hex digits>".
SLUG_BASE_MAX_LENGTH = SLUG_MAX_LENGTH - 8
# Numbered candidates tried before falling back to a random suffix: only a burst of creations of
# one name gets that far, and a random suffix ends the contest in one round.
NUMBERED_SLUG_ATTEMPTS = 10
SLUG_ATTEMPTS = NUMBERED_SLUG_ATTEMPTS + 5


def _slug_taken() -> ApplicationError:
    return ApplicationError(
        "Invalid input.", code="validation_error", fields={"slug": ["This slug is taken."]}
    )


def form_slug_base(*, name: str) -> str:
    """The slug a form named `name` would get if nobody had it yet: the name transliterated to
    ASCII (Thai `แบบฟอร์มสั่งซื้อ` → `aebbformsangsueo`), so it is a valid slug and a plain public
    URL; `form` when nothing of the name survives."""
    return slugify(anyascii(name))[:SLUG_BASE_MAX_LENGTH].strip("-") or "form"


def _next_free_slug(base: str) -> str:
    """`base`, or `base-N` with the smallest N >= 2 that no committed form uses."""
    numbered = re.compile(rf"{re.escape(base)}(?:-([0-9]+))?")
    taken = {
        int(match.group(1) or 1)
        for slug in Form.objects.filter(slug__startswith=base).values_list("slug", flat=True)
        if (match := numbered.fullmatch(slug))
    }
    n = 1
    while n in taken:
        n += 1
    return base if n == 1 else f"{base}-{n}"


def _save_with_generated_slug(form: Form) -> None:
    """Insert `form` under the first free slug derived from its name. Each attempt runs in its
    own savepoint: a concurrent creation that took the candidate first makes the insert wait for
    it to commit and then fail with the unique violation, and the next attempt reads the slugs
    again. After NUMBERED_SLUG_ATTEMPTS lost races the suffix is random."""
    base = form_slug_base(name=form.name)
    for attempt in range(SLUG_ATTEMPTS):
        if attempt < NUMBERED_SLUG_ATTEMPTS:
            form.slug = _next_free_slug(base)
        else:
            form.slug = f"{base}-{secrets.token_hex(3)}"
        try:
            with transaction.atomic():
                form.save()
        except IntegrityError:
            continue
        return
    raise ApplicationError(
        "No free slug could be found for this name; give one.",
        code="validation_error",
        fields={"slug": ["No free slug could be generated; give one."]},
    )


@transaction.atomic
def form_create(*, shop: Shop, slug: str | None = None, **fields) -> Form:
    """Create an order form in `shop`. Form slugs are global (they are public URLs).

    Without `slug`, one is generated from the name (see `form_slug_base`), numbered
    (`summer-sale-2`) when taken: concurrent creations of one name all succeed with distinct
    slugs. The slug never changes afterwards unless the owner sets one (renaming keeps it).

    Raises ApplicationError(validation_error, 400) on `slug` when an explicit slug is taken;
    the serializer's check answers the common case, and the unique index decides a race —
    never an IntegrityError. PlanLimit (403 `plan_limit`) when the shop's plan allows no more
    forms.
    """
    shop_plan_limit_check(shop_id=shop.pk, limit="max_forms")
    form = Form(shop=shop, **{k: v for k, v in fields.items() if k in FORM_FIELDS})
    if not slug:
        _save_with_generated_slug(form)
        return form
    form.slug = slug
    try:
        with transaction.atomic():
            form.save()
    except IntegrityError:
        raise _slug_taken() from None
    return form


@transaction.atomic
def form_update(*, form: Form, **fields) -> Form:
    """Change a form; a slug taken concurrently → 400 validation_error on `slug`. A new name
    keeps the slug (published links stay valid)."""
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
