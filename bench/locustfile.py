"""The capacity scenario: what the platform's users do, in a realistic mix (bench/capacity.py
seeds the data, starts the processes and runs this headless at rising user counts).

Every simulated user is one account (its own JWT, a large credit balance) and waits 1-3 s
between actions (a person clicking, not a load generator). Weights, out of 48 actions:

    browse   18  GET /api/credits/balance (8), GET /api/jobs (6), GET /api/credits/transactions (4)
    jobs     12  POST /api/models/import with a small STL (2; the Celery worker imports it),
                 POST /api/jobs video_render + its clip (1; the reference render worker renders it),
                 GET /api/jobs/<id> polling the user's newest job (9)
    shop      8  GET /api/public/forms/<slug> (4), POST .../submit an order (4), anonymous customers
    buy       2  POST /api/credits/purchases (PromptPay), then the provider's signed webhook
    analytics 4  the demo shop's owner: GET .../analytics/summary (2), .../analytics/sales (2)
    baseline  4  GET /healthz (no database: the floor the others are compared with)

The data file (BENCH_CAPACITY_DATA, JSON) names the accounts, the package, the webhook secret,
the form and its items, the shop and its owner's token, and the files to upload.
"""

import hashlib
import hmac
import itertools
import json
import os
import random
import time
import uuid

from locust import HttpUser, between, task

DATA = json.loads(open(os.environ["BENCH_CAPACITY_DATA"]).read())
_ACCOUNTS = itertools.cycle(DATA["tokens"])
STL = open(DATA["stl_path"], "rb").read()
RENDER_PARAMS = {"input_count": 1, "resolution": "160x120", "fps": 10, "trim": {"start": 0, "end": 1}}
CLIP = open(DATA["clip_path"], "rb").read()


def signature(body: bytes, secret: str) -> str:
    """X-Signature as the payment provider sends it: t=<unix>,v1=HMAC-SHA256("<t>.<body>")."""
    timestamp = int(time.time())
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class PlatformUser(HttpUser):
    wait_time = between(1, 3)

    def on_start(self):
        self.auth = {"Authorization": f"Bearer {next(_ACCOUNTS)}"}
        self.owner = {"Authorization": f"Bearer {DATA['owner_token']}"}
        self.job_id = None

    # browse
    @task(8)
    def balance(self):
        self.client.get("/api/credits/balance", headers=self.auth, name="GET /api/credits/balance")

    @task(6)
    def jobs_list(self):
        self.client.get("/api/jobs", headers=self.auth, name="GET /api/jobs")

    @task(4)
    def ledger(self):
        self.client.get("/api/credits/transactions", headers=self.auth, name="GET /api/credits/transactions")

    # jobs
    @task(2)
    def model_import(self):
        r = self.client.post(
            "/api/models/import",
            headers=self.auth,
            files={"input": ("part.stl", STL, "model/stl")},
            name="POST /api/models/import",
        )
        if r.status_code == 201:
            self.job_id = r.json()["id"]

    @task(1)
    def render(self):
        r = self.client.post(
            "/api/jobs",
            headers=self.auth,
            json={
                "kind": "video_render",
                "requested_count": 1,
                "params": RENDER_PARAMS,
            },
            name="POST /api/jobs (video_render)",
        )
        if r.status_code != 201:
            return
        job_id = r.json()["id"]
        self.client.post(
            f"/api/jobs/{job_id}/files",
            headers=self.auth,
            data={"role": "input"},
            files={"file": ("clip.mp4", CLIP, "video/mp4")},
            name="POST /api/jobs/<id>/files",
        )
        self.job_id = job_id

    @task(9)
    def poll(self):
        if self.job_id:
            self.client.get(f"/api/jobs/{self.job_id}", headers=self.auth, name="GET /api/jobs/<id>")

    # shop orders from the public form (anonymous customers)
    @task(4)
    def form(self):
        self.client.get(f"/api/public/forms/{DATA['form_slug']}", name="GET /api/public/forms/<slug>")

    @task(4)
    def order(self):
        body = {
            "customer": {"name": "Bench Customer", "phone": "+66 81 000 0000", "address": "Bangkok"},
            "lines": [{"item_id": random.choice(DATA["item_ids"]), "quantity": 1}],
        }
        self.client.post(
            f"/api/public/forms/{DATA['form_slug']}/submit",
            json=body,
            headers={"Idempotency-Key": str(uuid.uuid4())},
            name="POST /api/public/forms/<slug>/submit",
        )

    # buying credits: checkout, then the provider's signed notice
    @task(2)
    def buy(self):
        r = self.client.post(
            "/api/credits/purchases",
            headers={**self.auth, "Idempotency-Key": str(uuid.uuid4())},
            json={"package_id": DATA["package_id"], "provider": "promptpay"},
            name="POST /api/credits/purchases",
        )
        if r.status_code != 201:
            return
        payment = r.json()
        body = json.dumps(
            {
                "event_id": f"evt_{uuid.uuid4().hex}",
                "type": "payment.succeeded",
                "payment_id": payment["id"],
                "amount": payment["amount"],
                "currency": payment["currency"],
            }
        ).encode()
        self.client.post(
            "/api/webhooks/payments/promptpay",
            data=body,
            headers={
                "Content-Type": "application/json",
                "X-Signature": signature(body, DATA["webhook_secret"]),
            },
            name="POST /api/webhooks/payments/promptpay",
        )

    # analytics reads (the shop's owner)
    @task(2)
    def summary(self):
        self.client.get(
            f"/api/shops/{DATA['shop_id']}/analytics/summary",
            headers=self.owner,
            name="GET analytics/summary",
        )

    @task(2)
    def sales(self):
        self.client.get(
            f"/api/shops/{DATA['shop_id']}/analytics/sales?interval=day",
            headers=self.owner,
            name="GET analytics/sales",
        )

    # baseline
    @task(4)
    def healthz(self):
        self.client.get("/healthz", name="GET /healthz")
