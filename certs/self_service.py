"""Self-service renewal, and first enrolments over EST that an administrator approved.

Self-service renewal: a user renews, on their own page, a certificate that the org CA issued
them, when the org allows it (off, on request for an administrator's approval, automatic).

The user is signed on with the very certificate being renewed, or with a password (which
their mode allowed). They send a certificate signing request, or let the app make a new key
and hand it out once as PKCS#12. The new certificate then takes the path of an accepted
renewal: automatic puts it on the profile at once and schedules the old one's removal at its
expiry; on request it waits in the user's holding tank as the renewal of the old one.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from users.models import Method

from . import issuing
from .flows import FlowError, add_thumbprint, keep_certificates
from .models import (
    Certificate,
    Credential,
    CredentialKind,
    Enrolment,
    OrgCA,
    SelfRenewal,
    TankEntry,
    TankKind,
    TrustSettings,
)
from .org_ca import crl_url, issuable_cn, refuse_cn_of_another_user
from .tank import replace_credential
from .x509 import directly_issued_by, key_sha256, name_key, single_common_name


@dataclass
class Renewed:
    certificate: Certificate
    waiting: bool  # True: it waits in the holding tank for an administrator
    message: str
    pkcs12: bytes | None = None  # when the app made the key
    pem: str = ""  # the certificate and the org CA's, when the user sent a request


def setting() -> str:
    return TrustSettings.get().self_renewal


def signed_on_with(how, certificate: Certificate) -> bool:
    """Whether a session signed on like ``how`` may renew ``certificate``: it was signed on with
    that very certificate, or with a password."""
    if how.certificate is not None and how.certificate == certificate.sha256:
        return True
    return how.method in (Method.PASSWORD, Method.BOTH)


def refusal(credential: Credential, how, now=None) -> str | None:
    """Why the user may not renew this profile entry themselves (None: they may), in words."""
    now = now or timezone.now()
    if setting() == SelfRenewal.OFF:
        return "Renewing certificates yourself is turned off; ask your administrator for a new one."
    cert = credential.certificate
    if credential.kind != CredentialKind.THUMBPRINT or cert is None:
        return "Only a certificate on your profile by its thumbprint can be renewed here."
    if credential.remove_at is not None:
        return "It has been replaced by a renewal already."
    if cert.not_after <= now:
        return "It has expired; ask your administrator for a new one."
    if not issued_by_org_ca(cert):
        return "It was not issued by the org CA; renew it with whoever issued it."
    opens = cert.not_after - timedelta(days=settings.MFT_EXPIRY_WARNING_DAYS)
    if now < opens:
        # One renewal at a time, near the end: nobody mints certificates one after another.
        return (
            f"It can be renewed from {opens:%Y-%m-%d} on ({settings.MFT_EXPIRY_WARNING_DAYS} days before it expires)."
        )
    if TankEntry.objects.filter(renewal_of=credential, user=credential.user).exists():
        return "Its renewal is waiting for an administrator's approval already."
    if not signed_on_with(how, cert):
        return "Sign on with this certificate (or with your password) to renew it."
    return None


def issued_by_org_ca(cert: Certificate) -> bool:
    x = cert.to_x509()
    return any(directly_issued_by(x, org.certificate.to_x509()) for org in OrgCA.objects.select_related("certificate"))


def renew(
    user,
    credential_id: int,
    how,
    *,
    csr: bytes | None = None,
    key_type: str = "ec-p256",
    password: str | None = None,
    pkcs12_format: str = "modern",
    source_address=None,
) -> Renewed:
    """Renew one of the user's certificates: for the key in ``csr``, or for a new key handed out
    in a PKCS#12 file protected by ``password``. Refused (FlowError) with the reason in words."""
    credential = Credential.objects.select_related("certificate", "user").filter(pk=credential_id, user=user).first()
    if credential is None:
        raise FlowError("There is no such certificate on your profile.")
    problem = refusal(credential, how)
    if problem:
        raise FlowError(problem)
    org_ca = OrgCA.active()
    if org_ca is None:
        raise FlowError("There is no org CA to sign a renewal; ask your administrator.")
    old = credential.certificate
    cn = old.common_name or single_common_name(old.to_x509()) or user.username
    refuse_cn_of_another_user(user, cn)
    ca_cert = org_ca.certificate.to_x509()
    # As long as the old one was valid for, and no longer than the org CA.
    days = min((old.not_after - old.not_before).days, (ca_cert.not_valid_after_utc - timezone.now()).days)
    days = max(1, min(days, issuing.MAX_CLIENT_DAYS))
    if csr is None:
        if not password:
            raise FlowError("A new key needs a password to protect its PKCS#12 file.")
        if pkcs12_format not in issuing.PKCS12_FORMATS:
            raise FlowError(f"A PKCS#12 file is made in the modern or the legacy format, not '{pkcs12_format}'.")
    try:
        public_key = issuing.read_csr(csr).public_key() if csr is not None else None
        ca_key = issuing.decrypt_private_key(org_ca.encrypted_key, settings.KEY_ENCRYPTION_KEY)
        cert, key = issuing.issue_client_certificate(
            ca_cert, ca_key, cn, key_type, days, public_key=public_key, crl_url=crl_url()
        )
    except issuing.IssuingError as exc:
        raise FlowError(str(exc)) from None
    mode = setting()
    with transaction.atomic():
        # Two submissions at once make one renewal: the second finds the first's.
        locked = Credential.objects.select_for_update().filter(pk=credential.pk, remove_at__isnull=True).first()
        if locked is None or TankEntry.objects.filter(renewal_of=credential, user=user).exists():
            raise FlowError("It was renewed a moment ago; nothing more was made.")
        (row,) = keep_certificates(cert)
        if mode == SelfRenewal.AUTOMATIC:
            message = replace_credential(
                credential,
                row,
                user,
                verb="Renewed by its owner:",
                source="self-service renewal",
                source_address=source_address,
                action="certificate.self_renew",
            )
            waiting = False
        else:
            TankEntry.objects.create(
                user=user,
                kind=TankKind.THUMBPRINT,
                value=row.sha1,
                certificate=row,
                source_address=source_address,
                renewal_of=credential,
            )
            message = (
                f"Requested the renewal of {old.thumbprint}: the new certificate {row.thumbprint} waits in "
                f"{user.username}'s holding tank for an administrator to accept it as the renewal."
            )
            AuditEvent.objects.record(
                user,
                "certificate.self_renew_request",
                message,
                target=user,
                source_address=source_address,
                detail={"new": row.thumbprint, "old": old.thumbprint},
            )
            waiting = True
    if key is not None:
        bundle = issuing.pkcs12_bundle(cn, key, cert, [ca_cert], password, pkcs12_format)
        return Renewed(row, waiting, message, pkcs12=bundle)
    return Renewed(row, waiting, message, pem=row.pem + org_ca.certificate.pem)


# --- first enrolment over EST, approved by an administrator ------------------------------------

# How long an approved enrolment may wait for its client, at most.
MAX_ENROLMENT_HOURS = 30 * 24
REFUSED_ENROLMENT = "The username and enrolment secret do not match an open enrolment."


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def approve_enrolment(user, actor, *, cn=None, days=365, hours=72, source_address=None) -> tuple[Enrolment, str]:
    """Let ``user``'s client enrol once over EST (``simpleenroll``) within ``hours``: returns the
    enrolment and its one-time secret, which is shown this once and kept only as a hash."""
    if OrgCA.active() is None:
        raise FlowError("There is no org CA yet: create one before approving enrolments.")
    cn = issuable_cn(user, cn)
    if not isinstance(days, int) or not 1 <= days <= issuing.MAX_CLIENT_DAYS:
        raise FlowError(f"The certificate is valid for 1 to {issuing.MAX_CLIENT_DAYS} days.")
    if not isinstance(hours, int) or not 1 <= hours <= MAX_ENROLMENT_HOURS:
        raise FlowError(f"An enrolment stays open for 1 to {MAX_ENROLMENT_HOURS} hours.")
    secret = secrets.token_urlsafe(24)
    with transaction.atomic():
        enrolment = Enrolment.objects.create(
            user=user,
            secret_sha256=_secret_hash(secret),
            cn=cn,
            days=days,
            expires_at=timezone.now() + timedelta(hours=hours),
            **Enrolment.by(actor),
        )
        AuditEvent.objects.record(
            actor,
            "enrolment.approve",
            f"Approved one EST enrolment for {user.username} as '{cn}' ({days} days), open until "
            f"{enrolment.expires_at:%Y-%m-%d %H:%M} UTC.",
            target=user,
            source_address=source_address,
            detail={"cn": cn, "days": days, "enrolment": enrolment.pk},
        )
    return enrolment, secret


def enrol(username: str, secret: str, csr: bytes, source_address=None) -> Certificate:
    """The certificate for an approved enrolment (``simpleenroll``): the org CA certifies the
    request's key under the enrolment's name, its thumbprint lands on the profile, and the
    enrolment is used up. The same request sent again gets the same certificate. Refused
    (FlowError) in words."""
    try:
        public_key = issuing.read_csr(csr).public_key()
    except issuing.IssuingError as exc:
        raise FlowError(str(exc)) from None
    with transaction.atomic():
        enrolment = (
            Enrolment.objects.select_for_update(of=("self",))
            .select_related("user", "certificate")
            .filter(secret_sha256=_secret_hash(secret))
            .first()
        )
        if enrolment is None or name_key(enrolment.user.username) != name_key(username or ""):
            raise FlowError(REFUSED_ENROLMENT)
        user = enrolment.user
        if enrolment.used_at is not None:
            if enrolment.certificate is not None and enrolment.certificate.key_sha256 == key_sha256(public_key):
                return enrolment.certificate
            raise FlowError("This enrolment was used already; ask your administrator for a new one.")
        if enrolment.expires_at <= timezone.now():
            raise FlowError("This enrolment has expired; ask your administrator for a new one.")
        if not user.is_active:
            raise FlowError(f"User '{user.username}' is inactive.")
        org_ca = OrgCA.active()
        if org_ca is None:
            raise FlowError("There is no org CA to sign the certificate; ask your administrator.")
        ca_cert = org_ca.certificate.to_x509()
        try:
            ca_key = issuing.decrypt_private_key(org_ca.encrypted_key, settings.KEY_ENCRYPTION_KEY)
            cert, _ = issuing.issue_client_certificate(
                ca_cert, ca_key, enrolment.cn, days=enrolment.days, public_key=public_key, crl_url=crl_url()
            )
        except issuing.IssuingError as exc:
            raise FlowError(str(exc)) from None
        (row,) = keep_certificates(cert)
        actor = f"EST enrolment approved by {enrolment.added_by_name or 'an administrator'}"
        add_thumbprint(user, row.sha1, actor, certificate=row, source="EST enrolment", source_address=source_address)
        Enrolment.objects.filter(pk=enrolment.pk).update(used_at=timezone.now(), certificate=row)
        AuditEvent.objects.record(
            actor,
            "enrolment.use",
            f"Enrolled {user.username} over EST: '{row.subject_display}' ({row.thumbprint}), valid until "
            f"{row.not_after:%Y-%m-%d}.",
            target=user,
            source_address=source_address,
            detail={"thumbprint": row.thumbprint, "enrolment": enrolment.pk},
        )
    return row
