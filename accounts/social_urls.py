"""django-allauth's headless API (app client) under /_allauth/, with our provider-token view
(accounts.social.ProviderTokenView) in place of allauth's."""

from allauth.headless.constants import Client
from django.urls import include, path

from accounts import social

urlpatterns = [
    path("app/v1/auth/provider/token", social.ProviderTokenView.as_api_view(client=Client.APP)),
    path("", include("allauth.headless.urls")),
]
