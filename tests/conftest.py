"""Shared fixtures: the specification's certificates and a cast of named users.

The specification's example: client certificate "Frank", signed by the CA "Chug and Ring",
itself signed by the root "Toot". "Verisign" is a root that is approved but not installed.
User "rich" (full name "Rich") has the alternate CN "Dick" on his profile.

Users: alice is an administrator, rich an end user, charlie an outsider with nothing on
his profile.
"""

from dataclasses import dataclass

import pytest

from audit.models import AuditEvent
from certs import crls, flows, verdicts
from certs.models import Store
from tests.pki import Issued, crl_der, make_client, make_intermediate, make_root
from users.models import User


@dataclass(frozen=True)
class SpecPKI:
    toot: Issued
    chug: Issued  # "Chug and Ring", signed by Toot
    frank: Issued  # client certificate "Frank", signed by Chug and Ring
    verisign: Issued  # approved but not installed
    dick_by_verisign: Issued  # CN "Dick", signed by Verisign: cannot connect
    dick: Issued  # CN "Dick", signed by Chug and Ring
    rich: Issued  # CN "Rich", signed by Chug and Ring
    other_root: Issued  # a root nobody trusts
    stranger: Issued  # signed by other_root


@pytest.fixture(scope="session")
def spec() -> SpecPKI:
    toot = make_root("Toot")
    chug = make_intermediate("Chug and Ring", toot)
    verisign = make_root("Verisign")
    other_root = make_root("Elsewhere Root")
    return SpecPKI(
        toot=toot,
        chug=chug,
        frank=make_client("Frank", chug),
        verisign=verisign,
        dick_by_verisign=make_client("Dick", verisign),
        dick=make_client("Dick", chug),
        rich=make_client("Rich", chug),
        other_root=other_root,
        stranger=make_client("Frank", other_root),
    )


ACTOR = "test suite"


@pytest.fixture
def alice(db):
    return User.objects.create_user("alice", "correct horse battery", full_name="Alice Admin", is_admin=True)


@pytest.fixture
def rich(db):
    return User.objects.create_user("rich", full_name="Rich", email="rich@example.com")


@pytest.fixture
def charlie(db):
    return User.objects.create_user("charlie", full_name="Charlie Outsider")


@pytest.fixture(autouse=True)
def _fresh_caches():
    from django.core.cache import cache

    verdicts.clear_caches()
    cache.clear()
    AuditEvent.objects.forget_repeats()
    yield
    verdicts.clear_caches()
    AuditEvent.objects.forget_repeats()


def install(store: str, *issued: Issued):
    return flows.add_to_store(store, [i.cert for i in issued], ACTOR)


@pytest.fixture
def toot_installed(db, spec):
    """The usual configuration: Toot installed, Chug and Ring known as an intermediate."""
    install(Store.ROOT, spec.toot)
    install(Store.INTERMEDIATE, spec.chug)


@pytest.fixture
def pki(spec, toot_installed):
    """The specification's PKI, Toot installed and Chug and Ring an intermediate, for revocation
    tests: the verdict caches start empty."""
    verdicts.clear_caches()
    return spec


def add_crl(crl):
    """Store a CRL that must be accepted; its outcome. The verdict caches start empty again."""
    outcome, refused = crls.add_crl_file(crl_der(crl), ACTOR)
    assert not refused, refused
    verdicts.clear_caches()
    return outcome


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Real hashing is slow on purpose; tests that do not measure it use a fast one."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
