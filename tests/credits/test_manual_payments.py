"""PromptPay, TrueMoney and bank transfers are confirmed and refunded by finance staff by hand:
a reference, an optional slip, through the payment service, in the admin history and in
ManualPaymentRecord rows; a payment confirmed twice is applied once."""

from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from credits.models import CreditTransaction, ManualPaymentRecord, Payment
from credits.selectors import balance_get
from credits.services import payment_confirm_manually
from tests.conftest import assert_error
from tests.credits.conftest import run_in_threads
from tests.credits.factories import PaymentFactory
from tests.factories import UserFactory, admin_login

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def finance():
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="credits", codename__in=["view_payment", "confirm_payment"]
        )
    )
    return staff


def client_of(staff) -> Client:
    client = Client()
    admin_login(client, staff)
    return client


def confirm_url(payment):
    return reverse("admin:credits_payment_confirm", args=[payment.pk])


def slip(name="slip.png", content=PNG):
    return SimpleUploadedFile(name, content, content_type="image/png")


@pytest.mark.django_db
@pytest.mark.parametrize("provider", ["promptpay", "truemoney", "bank_transfer"])
def test_finance_confirms_a_payment_with_a_reference_and_a_slip(finance, provider):
    payment = PaymentFactory(provider=provider)
    client = client_of(finance)
    assert client.get(confirm_url(payment)).status_code == 200

    response = client.post(
        confirm_url(payment),
        {"reference": "KBANK-20261204-0001", "reason": "seen on statement", "slip": slip()},
    )

    assert response.status_code == 302, response.content
    payment.refresh_from_db()
    assert payment.status == "completed" and payment.transaction_id == f"{provider}:KBANK-20261204-0001"
    assert balance_get(user=payment.user) == 10
    (record,) = ManualPaymentRecord.objects.filter(payment=payment)
    assert (record.action, record.reference, record.amount, record.created_by) == (
        "confirm",
        "KBANK-20261204-0001",
        Decimal("299.00"),
        finance,
    )
    assert record.slip.name.startswith("payment-slips/") and record.slip.read() == PNG
    (entry,) = LogEntry.objects.filter(object_id=str(payment.pk))
    assert "reference KBANK-20261204-0001" in entry.get_change_message() and entry.user == finance


@pytest.mark.django_db
def test_confirming_twice_applies_once(finance):
    payment = PaymentFactory(provider="promptpay")
    client = client_of(finance)

    for _ in range(2):
        client.post(confirm_url(payment), {"reference": "REF-1", "reason": "paid"})

    assert ManualPaymentRecord.objects.filter(payment=payment).count() == 1
    assert CreditTransaction.objects.filter(payment=payment, type="purchase").count() == 1
    assert LogEntry.objects.filter(object_id=str(payment.pk)).count() == 1
    assert balance_get(user=payment.user) == 10


@pytest.mark.django_db(transaction=True)
def test_ten_staff_confirming_at_once_apply_it_once():
    payment = PaymentFactory(provider="truemoney")
    staff = UserFactory(is_staff=True)

    results = run_in_threads(
        lambda i: payment_confirm_manually(payment=payment, reference=f"TMN-{i}", confirmed_by=staff)[1],
        [(i,) for i in range(10)],
    )

    assert results.count(True) == 1 and results.count(False) == 9, results
    assert ManualPaymentRecord.objects.filter(payment=payment).count() == 1
    assert balance_get(user=payment.user) == 10


@pytest.mark.django_db
def test_a_payment_with_its_own_provider_cannot_be_confirmed_by_hand(finance):
    payment = PaymentFactory(provider="stripe")

    assert client_of(finance).post(confirm_url(payment), {"reference": "X", "reason": "r"}).status_code == 403
    assert Payment.objects.get(pk=payment.pk).status == "pending"


@pytest.mark.django_db
def test_staff_without_the_permission_cannot_confirm():
    payment = PaymentFactory(provider="promptpay")
    support = UserFactory(is_staff=True)
    support.user_permissions.add(Permission.objects.get(codename="view_payment"))

    assert client_of(support).post(confirm_url(payment), {"reference": "X", "reason": "r"}).status_code == 403
    assert Payment.objects.get(pk=payment.pk).status == "pending"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "data, error",
    [
        ({"reference": "", "reason": "paid"}, "This field is required."),
        ({"reference": "R", "reason": "paid", "slip": slip("slip.png", b"not an image")}, "must be a JPEG"),
        ({"reference": "R", "reason": "paid", "slip": slip("slip.exe", PNG)}, "extension"),
    ],
)
def test_bad_confirmations_change_nothing(finance, data, error):
    payment = PaymentFactory(provider="promptpay")

    response = client_of(finance).post(confirm_url(payment), data)

    assert response.status_code == 200 and error in response.content.decode()
    assert Payment.objects.get(pk=payment.pk).status == "pending"
    assert not ManualPaymentRecord.objects.exists()


@pytest.mark.django_db
def test_a_reference_confirms_one_payment_only(finance):
    first, second = PaymentFactory(provider="promptpay"), PaymentFactory(provider="promptpay")
    client = client_of(finance)
    client.post(confirm_url(first), {"reference": "SAME", "reason": "paid"})

    response = client.post(confirm_url(second), {"reference": "SAME", "reason": "paid"})

    assert response.status_code == 200 and "already confirmed another payment" in response.content.decode()
    assert Payment.objects.get(pk=second.pk).status == "pending"


@pytest.mark.django_db
def test_finance_refunds_by_hand_with_a_reference_once(finance):
    payment = PaymentFactory(provider="bank_transfer")
    payment_confirm_manually(payment=payment, reference="IN-1", confirmed_by=finance)
    client = client_of(finance)
    url = reverse("admin:credits_payment_refund", args=[payment.pk])
    token = str(client.get(url).context["form"].initial["token"])
    data = {"amount": "149.50", "reference": "OUT-1", "reason": "half returned", "token": token}

    first = client.post(url, {**data, "slip": slip()})
    again = client.post(url, data)

    assert first.status_code == 302 and again.status_code in (200, 302)
    payment.refresh_from_db()
    assert (payment.refunded_amount, payment.credits_clawed_back) == (Decimal("149.50"), 5)
    record = ManualPaymentRecord.objects.get(payment=payment, action="refund")
    assert record.reference == "OUT-1" and record.refund.amount == Decimal("149.50") and record.slip
    assert "reference OUT-1" in LogEntry.objects.get(object_id=str(payment.pk)).get_change_message()


@pytest.mark.django_db
def test_a_bank_transfer_checkout_shows_the_account_and_a_reference(auth_client, seeded_package, settings):
    settings.BANK_TRANSFER_DETAILS = "Kasikornbank, Example Co., Ltd., 123-4-56789-0"

    response = auth_client.post(
        "/api/credits/purchases",
        {"package_id": str(seeded_package("Popular Pack").id), "provider": "bank_transfer"},
        format="json",
    )

    assert response.status_code == 201, response.content
    checkout = response.json()["checkout"]
    assert checkout["type"] == "bank_transfer" and checkout["account"] == settings.BANK_TRANSFER_DETAILS
    assert checkout["reference"].startswith("BT") and response.json()["status"] == "pending"


@pytest.mark.django_db
def test_bank_transfer_is_refused_when_no_account_is_configured(auth_client, seeded_package, settings):
    settings.BANK_TRANSFER_DETAILS = ""

    response = auth_client.post(
        "/api/credits/purchases",
        {"package_id": str(seeded_package("Popular Pack").id), "provider": "bank_transfer"},
        format="json",
    )

    assert_error(response, 400, "provider_unavailable")
    assert not Payment.objects.exists()
