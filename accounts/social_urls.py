"""django-allauth's headless API (app client) under /_allauth/, with our provider-token view
(accounts.social.provider_token) in place of allauth's."""

from django.urls import include, path

from accounts import social

urlpatterns = [
    path("app/v1/auth/provider/token", social.provider_token),
    path("", include("allauth.headless.urls")),
]
