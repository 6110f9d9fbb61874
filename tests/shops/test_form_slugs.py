"""A form created without a slug gets one from its name: unique on the platform, stable after."""

import re

import pytest

from shops.models import Form
from shops.services.forms import NUMBERED_SLUG_ATTEMPTS
from tests.conftest import assert_error, client_for
from tests.shops.factories import make_form, make_shop
from tests.shops.test_integrity import run_threads

SLUG_RE = re.compile(r"^[-a-zA-Z0-9_]+$")  # what the public URL's <slug:> converter accepts


def url(shop):
    return f"/api/shops/{shop.pk}/forms"


@pytest.mark.django_db
def test_a_form_without_a_slug_gets_one_from_its_name(auth_client, shop):
    response = auth_client.post(url(shop), {"name": "Summer Sale!"}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["slug"] == "summer-sale"
    assert Form.objects.get(pk=response.json()["id"]).slug == "summer-sale"


@pytest.mark.django_db
def test_two_forms_of_the_same_name_get_distinct_slugs(auth_client, shop, other_client, other_shop):
    # given: one in the caller's shop, one in another owner's (slugs are platform-wide)
    first = auth_client.post(url(shop), {"name": "Order form"}, format="json")
    second = other_client.post(url(other_shop), {"name": "Order form"}, format="json")
    third = auth_client.post(url(shop), {"name": "Order form"}, format="json")

    # then
    assert [r.status_code for r in (first, second, third)] == [201, 201, 201]
    slugs = [r.json()["slug"] for r in (first, second, third)]
    assert slugs == ["order-form", "order-form-2", "order-form-3"]


@pytest.mark.django_db
def test_the_public_form_is_reachable_under_its_generated_slug(auth_client, api_client, shop):
    slug = auth_client.post(url(shop), {"name": "Pre-order"}, format="json").json()["slug"]

    response = api_client.get(f"/api/public/forms/{slug}")

    assert response.status_code == 200, response.content
    assert response.json()["name"] == "Pre-order"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("แบบฟอร์มสั่งซื้อ", "aebbformsangsueo"),
        ("ร้านกาแฟ สด", "rankaaef-sd"),
        ("Café Tokyo 東京", "cafe-tokyo-dongjing"),
        ("!!!", "form"),
    ],
)
def test_a_non_latin_name_gives_a_transliterated_url_safe_slug(auth_client, api_client, shop, name, expected):
    response = auth_client.post(url(shop), {"name": name}, format="json")

    assert response.status_code == 201, response.content
    slug = response.json()["slug"]
    assert slug == expected and SLUG_RE.match(slug)
    assert api_client.get(f"/api/public/forms/{slug}").status_code == 200


@pytest.mark.django_db
def test_a_long_name_gives_a_slug_that_fits_with_room_for_a_suffix(auth_client, shop):
    name = " ".join(["word"] * 40)  # 199 characters: the longest name is 200
    slugs = [auth_client.post(url(shop), {"name": name}, format="json").json()["slug"] for _ in range(2)]

    max_length = Form._meta.get_field("slug").max_length
    assert slugs[1] == f"{slugs[0]}-2"
    assert all(len(slug) <= max_length and not slug.endswith("-") for slug in slugs), slugs


@pytest.mark.django_db
def test_the_generated_slug_is_kept_when_the_form_is_renamed(auth_client, shop):
    created = auth_client.post(url(shop), {"name": "Launch"}, format="json").json()

    response = auth_client.patch(f"{url(shop)}/{created['id']}", {"name": "Relaunch"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["slug"] == "launch" == Form.objects.get(pk=created["id"]).slug


@pytest.mark.django_db
def test_an_explicit_slug_that_is_taken_is_still_a_400_on_slug(auth_client, shop):
    make_form(shop, slug="taken")

    error = assert_error(
        auth_client.post(url(shop), {"name": "x", "slug": "taken"}, format="json"), 400, "validation_error"
    )

    assert "slug" in error["fields"]


@pytest.mark.django_db
def test_a_generated_slug_skips_numbers_already_taken(auth_client, shop):
    for slug in ("promo", "promo-2", "promo-4", "promo-code"):
        make_form(shop, slug=slug)

    assert auth_client.post(url(shop), {"name": "Promo"}, format="json").json()["slug"] == "promo-3"


@pytest.mark.django_db(transaction=True)
def test_twelve_concurrent_creations_of_one_name_all_succeed_with_distinct_slugs():
    # given
    shop = make_shop()
    count = 12
    assert count > NUMBERED_SLUG_ATTEMPTS  # some creations lose every numbered race

    # when
    def post(index):
        return client_for(shop.owner).post(url(shop), {"name": "Flash Sale"}, format="json")

    responses = run_threads(count, post)

    # then
    assert not [r for r in responses if isinstance(r, Exception)], responses
    assert [r.status_code for r in responses] == [201] * count, [r.content[:300] for r in responses]
    slugs = [r.json()["slug"] for r in responses]
    assert len(set(slugs)) == count, slugs
    assert all(s == "flash-sale" or s.startswith("flash-sale-") for s in slugs), slugs
    assert sorted(Form.objects.filter(shop=shop).values_list("slug", flat=True)) == sorted(slugs)
