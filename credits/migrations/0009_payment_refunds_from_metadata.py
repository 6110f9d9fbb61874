"""Move each payment's refunds from the JSON list in `metadata["refunds"]` into PaymentRefund rows.

A list entry was {key, amount, credits, reason, by, at}. Its shortfall was only kept as the
payment's total, so it is recomputed with the formula the service used (credits owed in
proportion to the amount refunded so far, minus what earlier refunds took or missed); whatever
does not add up to the stored total goes to the last row, so the rows sum to the payment's
totals. An entry without a key gets `legacy:<payment id>:<n>`. The clawback's ledger row is
linked by the key the service gave it (`payment:<id>:clawback`, then `:2`, `:3`…).
Reverse: the rows become the JSON list again and are deleted.
"""

from decimal import ROUND_HALF_UP, Decimal

from django.db import migrations
from django.utils.dateparse import parse_datetime

LEGACY_PREFIX = "legacy:"


def _owed_total(payment, refunded_total: Decimal) -> int:
    if refunded_total >= payment.amount or not payment.amount:
        return payment.credits
    return int((Decimal(payment.credits) * refunded_total / payment.amount).to_integral_value(ROUND_HALF_UP))


def forward(apps, schema_editor):
    Payment = apps.get_model("credits", "Payment")
    PaymentRefund = apps.get_model("credits", "PaymentRefund")
    CreditTransaction = apps.get_model("credits", "CreditTransaction")
    for payment in Payment.objects.filter(metadata__has_key="refunds").order_by("pk").iterator():
        entries = payment.metadata.get("refunds") or []
        refunded_total = Decimal("0")
        clawed = shortfall_so_far = 0
        rows = []
        for n, entry in enumerate(entries, start=1):
            amount = Decimal(str(entry.get("amount") or "0"))
            credits = int(entry.get("credits") or 0)
            refunded_total += amount
            shortfall = 0
            if payment.completed_at is not None and payment.credits:
                owed = _owed_total(payment, refunded_total) - clawed - shortfall_so_far
                shortfall = max(owed - credits, 0)
            clawed += credits
            shortfall_so_far += shortfall
            ledger_key = f"payment:{payment.pk}:clawback" + (f":{n}" if n > 1 else "")
            ledger = CreditTransaction.objects.filter(idempotency_key=ledger_key).first() if credits else None
            at = parse_datetime(entry["at"]) if entry.get("at") else payment.refunded_at or payment.updated_at
            rows.append(
                PaymentRefund(
                    payment=payment,
                    amount=amount,
                    credits_clawed_back=credits,
                    shortfall=shortfall,
                    idempotency_key=entry.get("key") or f"{LEGACY_PREFIX}{payment.pk}:{n}",
                    created_by_id=entry.get("by"),
                    ledger_entry=ledger,
                    reason=(entry.get("reason") or "")[:500],
                    created_at=at,
                )
            )
        if rows:
            rows[-1].shortfall = max(rows[-1].shortfall + payment.refund_shortfall - shortfall_so_far, 0)
        for row in rows:
            at = row.created_at
            row.save(force_insert=True)
            # auto_now_add replaced the historical time on save
            PaymentRefund.objects.filter(pk=row.pk).update(created_at=at, updated_at=at)
        metadata = {k: v for k, v in payment.metadata.items() if k != "refunds"}
        Payment.objects.filter(pk=payment.pk).update(metadata=metadata)


def backward(apps, schema_editor):
    Payment = apps.get_model("credits", "Payment")
    PaymentRefund = apps.get_model("credits", "PaymentRefund")
    payment_ids = PaymentRefund.objects.values_list("payment_id", flat=True).distinct()
    for payment in Payment.objects.filter(pk__in=payment_ids).order_by("pk").iterator():
        entries = [
            {
                "key": "" if row.idempotency_key.startswith(LEGACY_PREFIX) else row.idempotency_key,
                "amount": str(row.amount),
                "credits": row.credits_clawed_back,
                "reason": row.reason,
                "by": str(row.created_by_id) if row.created_by_id else None,
                "at": row.created_at.isoformat(),
            }
            for row in PaymentRefund.objects.filter(payment=payment).order_by("created_at", "id")
        ]
        Payment.objects.filter(pk=payment.pk).update(metadata={**payment.metadata, "refunds": entries})
    PaymentRefund.objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("credits", "0008_payment_refunds_and_status_guard")]
    operations = [migrations.RunPython(forward, backward)]
