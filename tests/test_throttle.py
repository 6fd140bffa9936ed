"""Password guesses are throttled per username and per address, and told when to retry."""

import pytest
from django.test import Client

from audit.models import AuditEvent
from signon import throttle

pytestmark = pytest.mark.django_db

PASSWORD = "a fine passphrase"


@pytest.fixture
def rich_with_password(rich):
    rich.https_mode = "cert-or-password"
    rich.set_password(PASSWORD)
    rich.save()
    return rich


def sign_in(username, password, address="192.0.2.10"):
    client = Client(REMOTE_ADDR=address)
    return client.post("/accounts/login/", {"username": username, "password": password})


def test_after_five_wrong_passwords_even_the_right_one_waits(rich_with_password):
    for _ in range(throttle.FAILURES_PER_USERNAME):
        assert b"Sign-on failed." in sign_in("rich", "wrong guess").content
    response = sign_in("rich", PASSWORD)
    assert response.status_code == 200
    assert b"Too many failed sign-ins. Try again in 15 minutes." in response.content
    assert AuditEvent.objects.filter(action="signon.throttled").count() == 1
    # Another address is paused for this username too: the username is what is guessed at.
    assert b"Too many failed sign-ins." in sign_in("rich", PASSWORD, address="198.51.100.7").content


def test_an_unknown_username_is_throttled_exactly_like_a_known_one(db):
    for _ in range(throttle.FAILURES_PER_USERNAME):
        assert b"Sign-on failed." in sign_in("nobody", "guess").content
    assert b"Too many failed sign-ins. Try again in 15 minutes." in sign_in("nobody", "guess").content


def test_one_address_guessing_many_usernames_is_paused(rich_with_password):
    for number in range(throttle.FAILURES_PER_ADDRESS):
        sign_in(f"user{number}", "guess")
    assert b"Too many failed sign-ins." in sign_in("rich", PASSWORD).content
    assert sign_in("rich", PASSWORD, address="198.51.100.7").status_code == 302  # elsewhere it works


def test_a_right_password_resets_the_count_for_the_username(rich_with_password):
    for _ in range(throttle.FAILURES_PER_USERNAME - 1):
        sign_in("rich", "wrong guess", address="198.51.100.1")
    assert sign_in("rich", PASSWORD, address="198.51.100.2").status_code == 302
    for _ in range(throttle.FAILURES_PER_USERNAME - 1):
        sign_in("rich", "wrong guess", address="198.51.100.3")
    assert sign_in("rich", PASSWORD, address="198.51.100.4").status_code == 302
