import json
import os
import subprocess
import sys

PRINT_ORIGINS = (
    "import django, json; django.setup(); from django.conf import settings; "
    "print(json.dumps(settings.CORS_ALLOWED_ORIGINS))"
)


def test_development_settings_let_the_frontend_url_origin_call_the_api():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.local"}
    env.update({"FRONTEND_URL": "http://localhost:5173/app/", "CORS_ALLOWED_ORIGINS": "https://a.example"})

    out = subprocess.run(
        [sys.executable, "-c", PRINT_ORIGINS], env=env, capture_output=True, text=True, check=True
    )

    assert json.loads(out.stdout.strip().splitlines()[-1]) == ["https://a.example", "http://localhost:5173"]
