from django.core.management import call_command, get_commands
from django.db import transaction

from accounts import services
from accounts.models import User
from config.commands import BaseCommand

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "admin-demo-Pass-1"
DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-user-Pass-1"


class Command(BaseCommand):
    help = (
        "Load demo data (idempotent): an admin and a demo user, then every app's "
        "`seed_demo_<app>` command. Prints the logins."
    )

    def handle(self, *args, **options):
        with transaction.atomic():
            admin = User.objects.filter(email__iexact=ADMIN_EMAIL).first()
            if admin is None:
                admin = services.user_register(email=ADMIN_EMAIL, password=ADMIN_PASSWORD, name="Demo Admin")
            admin.is_staff = admin.is_superuser = admin.is_active = True
            admin.deleted_at = None
            admin.set_password(ADMIN_PASSWORD)
            admin.save()
            demo = User.objects.filter(email__iexact=DEMO_EMAIL).first()
            if demo is None:
                demo = services.user_register(
                    email=DEMO_EMAIL, password=DEMO_PASSWORD, name="Demo User", organization="Demo Co"
                )
        for name in sorted(get_commands()):
            if name.startswith("seed_demo_"):
                call_command(name, stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
        self.stdout.write(f"  Admin console: /admin/  login {ADMIN_EMAIL} / {ADMIN_PASSWORD}")
        self.stdout.write(f"  Demo API user: {DEMO_EMAIL} / {DEMO_PASSWORD}")
