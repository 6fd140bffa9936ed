"""Rate limits in the cache every worker and instance shares (``MFT_CACHE_URL``): per user when
signed on (``MFT_API_RATE``), per client address otherwise (``MFT_API_ANON_RATE``). A request
over the limit is answered 429 with ``Retry-After``."""

from django.conf import settings
from rest_framework import throttling

from users.pages import client_address


class PerUser(throttling.SimpleRateThrottle):
    scope = "user"

    def get_rate(self):
        return settings.MFT_API_RATE

    def get_cache_key(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return None
        return f"mft:api-rate:user:{request.user.pk}"


class PerAddress(throttling.SimpleRateThrottle):
    scope = "anon"

    def get_rate(self):
        return settings.MFT_API_ANON_RATE

    def get_cache_key(self, request, view):
        if request.user and request.user.is_authenticated:
            return None
        return f"mft:api-rate:address:{client_address(request._request) or 'unknown'}"
