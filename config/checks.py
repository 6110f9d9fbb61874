"""System checks of the project's own settings (run by `manage.py check`; `--deploy` ones only
when asked, as a release pipeline does before it ships)."""

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def num_proxies_is_explicit(app_configs, **kwargs):
    """NUM_PROXIES decides whose address the throttles and the login lockout count: a deployment
    must state it rather than inherit a guess."""
    if settings.NUM_PROXIES is not None:
        return []
    return [
        Error(
            "NUM_PROXIES is not set.",
            hint=(
                "Set NUM_PROXIES in the environment to the number of reverse proxies in front of "
                "the app that append to X-Forwarded-For (1 behind one nginx, 0 when clients reach "
                "gunicorn directly)."
            ),
            id="platform.E001",
        )
    ]
