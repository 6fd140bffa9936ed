"""The API's views, by family: ``users`` (users, policies, whoami), ``certs`` (profile entries,
issuing, check), ``trust`` (the stores, Match CN, the org CA, holding tanks), ``revocation``
(CRLs and revocation policies), ``audit``,
``transfers`` and ``docs``. Each calls the same use cases as the pages and the command line, and nothing else."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from .. import serializers
from ..idempotency import HEADER
from ..problems import MEDIA_TYPE, TITLES

IDEMPOTENCY_KEY = OpenApiParameter(
    HEADER,
    str,
    OpenApiParameter.HEADER,
    description="Any unique string (a UUID): the same request sent again with it is answered, not done again.",
)


def answers(ok: dict, *errors: int, public: bool = False) -> dict:
    """An operation's responses: ``ok``, then the problems it can answer with."""
    found = dict(ok)
    for code in sorted({*errors, 429} | (set() if public else {401, 403})):
        found[(code, MEDIA_TYPE)] = OpenApiResponse(serializers.Problem, description=TITLES[code])
    return found
