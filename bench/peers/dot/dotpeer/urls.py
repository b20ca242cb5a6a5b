"""DOT's own views: the token endpoint (client credentials) and introspection (RFC 7662)."""

from __future__ import annotations

from django.urls import path
from oauth2_provider.views import IntrospectTokenView, TokenView

urlpatterns = [
    path("o/token/", TokenView.as_view()),
    path("o/introspect/", IntrospectTokenView.as_view()),
]
