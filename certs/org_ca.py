"""Use cases of the organisational CA: create or import it (and rotate it), and issue certificates.

The CA's private key is kept encrypted with the key-encryption key from settings; a
certificate's private key exists only inside the PKCS#12 file handed to the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from cryptography import x509
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent

from . import crls, issuing, revocation, verdicts
from .flows import Change, FlowError, Outcome, add_thumbprint, add_to_store, keep_certificates, overlaps
from .models import Certificate, Credential, CredentialKind, Crl, OrgCA, OrgCARevocation, Store, TrustSettings
from .x509 import CNError, clean_cn, directly_issued_by, format_thumbprint, parse_thumbprint


def create(cn: str, actor, *, key_type="ec-p256", days=10 * 365, rotate=False, source_address=None):
    """Create the organisational CA, install it as a trusted root and approve it.

    Returns (org_ca, outcome). With an org CA in place already, ``rotate`` must be set; the
    earlier CA stays installed and approved so that what it issued keeps working.
    """
    _refuse_second_org_ca(rotate)
    cert, key = issuing.create_ca(cn, key_type, days)
    return _install(cert, key, actor, "Created", source_address)


def import_existing(cert, key, actor, *, rotate=False, source_address=None):
    """Make an existing CA (certificate and key, e.g. from a PKCS#12 file) the org CA."""
    _refuse_second_org_ca(rotate)
    if cert.not_valid_after_utc <= timezone.now():
        raise FlowError(f"The CA certificate expired on {cert.not_valid_after_utc:%Y-%m-%d}.")
    return _install(cert, key, actor, "Imported", source_address)


def _refuse_second_org_ca(rotate: bool) -> None:
    current = OrgCA.active()
    if current is not None and not rotate:
        raise FlowError(
            f"There is an org CA already ('{current.certificate.subject_display}'). Rotate it to make a new one."
        )


def _install(cert, key, actor, verb: str, source_address) -> tuple[OrgCA, Outcome]:
    outcome = Outcome()
    with transaction.atomic():
        current = OrgCA.objects.select_for_update().filter(is_active=True).select_related("certificate").first()
        (row,) = keep_certificates(cert)
        if current is not None:
            if current.certificate_id == row.pk:
                raise FlowError("That CA is the org CA already.")
            OrgCA.objects.filter(pk=current.pk).update(is_active=False)
            outcome.changes.append(
                Change(
                    f"The previous org CA '{current.certificate.subject_display}' no longer signs new "
                    "certificates; it stays trusted so that certificates it issued keep working."
                )
            )
        org_ca = OrgCA.objects.create(
            certificate=row,
            encrypted_key=issuing.encrypt_private_key(key, settings.KEY_ENCRYPTION_KEY),
            **OrgCA.by(actor),
        )
        message = f"{verb} the org CA '{row.subject_display}' ({row.thumbprint}), valid until {row.not_after:%Y-%m-%d}."
        AuditEvent.objects.record(
            actor,
            "org_ca.create" if verb == "Created" else "org_ca.import",
            message,
            source_address=source_address,
            detail={"thumbprint": row.thumbprint, "subject": row.subject, "rotated": current is not None},
        )
        outcome.changes.insert(0, Change(message))
        for store in (Store.ROOT, Store.APPROVED):
            added = add_to_store(store, [cert], actor, source_address)
            outcome.changes.extend(added.changes)
            outcome.warnings.extend(w for w in added.warnings if w not in outcome.warnings)
        # Its CRL from the start, so checking revocation never finds the org CA without one.
        crl = publish_crl(org_ca, actor, source_address)
        outcome.changes.append(Change(f"Signed the org CA's first CRL (id {crl.pk}), served at {CRL_PATH}."))
    return org_ca, outcome


def issuable_cn(user, cn: str | None) -> str:
    """The CN a certificate the org CA signs for ``user`` gets: ``cn`` (the username when none is
    given), checked as a CN and as no one else's sign-on name; ``FlowError`` says what is wrong."""
    try:
        cn = clean_cn(cn or user.username)
    except CNError as exc:
        raise FlowError(str(exc)) from None
    refuse_cn_of_another_user(user, cn)
    return cn


def refuse_cn_of_another_user(user, cn: str) -> None:
    """A certificate the org CA signs must not carry a name that can sign someone else on."""
    shared = overlaps(user, CredentialKind.CN, cn)
    if shared:
        how = shared[0].how
        raise FlowError(
            f"{how[0].upper()}{how[1:]}: a certificate with it could sign {shared[0].username} on. Choose another CN."
        )


@dataclass
class IssuedCertificate:
    pkcs12: bytes
    credential: Credential
    certificate: Certificate


def issue_certificate(
    user,
    actor,
    *,
    password: str,
    cn: str | None = None,
    days: int = 365,
    key_type: str = "ec-p256",
    source_address=None,
    pkcs12_format: str = "modern",
) -> IssuedCertificate:
    """Create a certificate for the user, signed by the org CA, delivered as PKCS#12.

    The thumbprint lands on the user's profile; the private key exists only inside the
    returned PKCS#12, protected by ``password``, and is never stored.
    """
    org_ca = OrgCA.active()
    if org_ca is None:
        raise FlowError("There is no org CA yet: create one before issuing certificates.")
    if not password:
        raise FlowError("Give a password to protect the PKCS#12 file.")
    cn = issuable_cn(user, cn)
    ca_cert = org_ca.certificate.to_x509()
    ca_key = issuing.decrypt_private_key(org_ca.encrypted_key, settings.KEY_ENCRYPTION_KEY)
    cert, key = issuing.issue_client_certificate(ca_cert, ca_key, cn, key_type, days, crl_url=crl_url())
    if pkcs12_format not in issuing.PKCS12_FORMATS:
        raise FlowError(f"A PKCS#12 file is made in the modern or the legacy format, not '{pkcs12_format}'.")
    bundle = issuing.pkcs12_bundle(cn, key, cert, [ca_cert], password, pkcs12_format)
    with transaction.atomic():
        (row,) = keep_certificates(cert)
        credential, _ = add_thumbprint(
            user, row.sha1, actor, certificate=row, source="issued", source_address=source_address
        )
        AuditEvent.objects.record(
            actor,
            "certificate.issue",
            f"Issued certificate '{row.subject_display}' ({row.thumbprint}) for {user.username}, "
            f"valid until {row.not_after:%Y-%m-%d}, signed by the org CA '{org_ca.certificate.subject_display}'.",
            target=user,
            source_address=source_address,
            detail={"thumbprint": row.thumbprint, "key_type": key_type, "days": days, "pkcs12": pkcs12_format},
        )
    return IssuedCertificate(bundle, credential, row)


# --- revocation: the org CA's CRL ----------------------------------------------------------------

# Where the app serves the org CA's CRL (DER), named in every certificate the org CA issues.
CRL_PATH = "/crl/org-ca.crl"
SYSTEM = "org CA"  # who re-signs the CRL when no one asked

REVOKE_REASONS = {
    "unspecified": x509.ReasonFlags.unspecified,
    "key-compromise": x509.ReasonFlags.key_compromise,
    "affiliation-changed": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessation-of-operation": x509.ReasonFlags.cessation_of_operation,
    "privilege-withdrawn": x509.ReasonFlags.privilege_withdrawn,
}


def crl_url() -> str | None:
    return settings.MFT_PUBLIC_URL + CRL_PATH if settings.MFT_PUBLIC_URL else None


def _lifetime() -> timedelta:
    return timedelta(days=settings.MFT_ORG_CA_CRL_DAYS)


def publish_crl(org_ca: OrgCA | None = None, actor=SYSTEM, source_address=None) -> Crl | None:
    """Sign the org CA's CRL afresh (every revocation it recorded) and add it to the CRL store,
    where it replaces the previous one. None when there is no org CA."""
    org_ca = org_ca or OrgCA.active()
    if org_ca is None:
        return None
    ca_cert = org_ca.certificate.to_x509()
    ca_key = issuing.decrypt_private_key(org_ca.encrypted_key, settings.KEY_ENCRYPTION_KEY)
    revoked = [
        (int(r.certificate.to_x509().serial_number), r.added_at, x509.ReasonFlags(r.reason) if r.reason else None)
        for r in org_ca.revocations.select_related("certificate")
    ]
    issuer_key = revocation.name_key(ca_cert.subject)
    numbers = [int(n) for n in Crl.objects.filter(issuer_key=issuer_key).values_list("number", flat=True) if n]
    now = timezone.now().replace(microsecond=0)
    crl = issuing.sign_crl(
        ca_cert, ca_key, revoked, number=max(numbers, default=0) + 1, this_update=now, next_update=now + _lifetime()
    )
    return crls.add_crl(crl, actor, source_address=source_address).crl


def current_crl(org_ca: OrgCA | None = None) -> Crl | None:
    """The org CA's CRL as stored, re-signed first when half of its life is gone (or it has none)."""
    org_ca = org_ca or OrgCA.active()
    if org_ca is None:
        return None
    subject = org_ca.certificate.subject
    row = Crl.objects.filter(issuer=subject, signer=org_ca.certificate, delta_base="").order_by("-this_update").first()
    if row is None or row.next_update is None or row.next_update - timezone.now() < _lifetime() / 2:
        with transaction.atomic():
            # One instance re-signs at a time; the others find its CRL.
            OrgCA.objects.select_for_update().filter(pk=org_ca.pk).first()
            again = Crl.objects.filter(issuer=subject, signer=org_ca.certificate, delta_base="")
            row = again.order_by("-this_update").first()
            if row is None or row.next_update is None or row.next_update - timezone.now() < _lifetime() / 2:
                row = publish_crl(org_ca)
    return row


@dataclass
class RevocationImpact:
    """What revoking a certificate would do, shown before it is done."""

    certificate: Certificate
    org_ca: OrgCA
    credentials: list  # the profile entries that go with it (its thumbprint, on this user's profile)
    others: list  # other users whose profile holds its thumbprint: they can no longer sign on with it either


def revocation_impact(user, thumbprint: str) -> RevocationImpact:
    sha1 = parse_thumbprint(thumbprint)
    shown = format_thumbprint(sha1)
    row = Certificate.objects.filter(sha1=sha1).first()
    on_profile = list(Credential.objects.filter(user=user, kind=CredentialKind.THUMBPRINT, key=sha1))
    if row is None:
        raise FlowError(f"The app knows no certificate with thumbprint {shown}.")
    if not on_profile and not Credential.objects.filter(user=user, certificate=row).exists():
        raise FlowError(f"Thumbprint {shown} is not on {user.username}'s profile.")
    cert = row.to_x509()
    issuer = next((ca for ca in OrgCA.objects.select_related("certificate") if ca.certificate.to_x509() == cert), None)
    if issuer is not None:
        raise FlowError(f"{shown} is the org CA itself; it cannot revoke itself.")
    issuer = next(
        (
            ca
            for ca in OrgCA.objects.select_related("certificate")
            if directly_issued_by(cert, ca.certificate.to_x509())
        ),
        None,
    )
    if issuer is None:
        raise FlowError(
            f"'{row.subject_display}' ({shown}) was not issued by the org CA, so the app cannot revoke it: ask its CA "
            "to revoke it and add that CA's CRL (manage.py certs crls add FILE), or remove the thumbprint from the "
            "profile."
        )
    existing = OrgCARevocation.objects.filter(certificate=row).first()
    if existing is not None:
        raise FlowError(
            f"'{row.subject_display}' ({shown}) was revoked already, on {existing.added_at:%Y-%m-%d %H:%M} UTC."
        )
    others = sorted(
        {
            c.user.username
            for c in Credential.objects.filter(kind=CredentialKind.THUMBPRINT, key=sha1).exclude(user=user)
        }
    )
    return RevocationImpact(row, issuer, on_profile, others)


def revoke(user, thumbprint: str, actor, *, reason: str = "unspecified", source_address=None) -> Outcome:
    """Revoke a certificate the org CA issued: its CRL lists it from now on (re-signed at once and
    put in the CRL store, so it cannot connect wherever revocation is checked), and its thumbprint
    leaves the user's profile."""
    if reason not in REVOKE_REASONS:
        raise FlowError(f"The reason must be one of {', '.join(REVOKE_REASONS)}, not '{reason}'.")
    flag = REVOKE_REASONS[reason]
    with transaction.atomic():
        impact = revocation_impact(user, thumbprint)
        row = impact.certificate
        OrgCARevocation.objects.create(
            org_ca=impact.org_ca,
            certificate=row,
            reason=flag.value if reason != "unspecified" else "",
            **OrgCARevocation.by(actor),
        )
        for credential in impact.credentials:
            credential.delete()
        message = (
            f"Revoked '{row.subject_display}' ({row.thumbprint}) of {user.username} "
            f"(reason: {reason.replace('-', ' ')}); its thumbprint is no longer on {user.username}'s profile."
        )
        AuditEvent.objects.record(
            actor,
            "certificate.revoke",
            message,
            target=user,
            source_address=source_address,
            detail={"thumbprint": row.thumbprint, "reason": reason, "org_ca": impact.org_ca.certificate.thumbprint},
        )
        crl = publish_crl(impact.org_ca, actor, source_address)
        TrustSettings.bump()
    outcome = Outcome([Change(message)])
    if crl is not None:
        outcome.changes.append(Change(f"The org CA's CRL now lists it (CRL id {crl.pk}, number {crl.number})."))
    if impact.others:
        outcome.warnings.append(
            "Its thumbprint is also on the profile of "
            + ", ".join(impact.others)
            + "; revoked, it signs none of them on "
            "where revocation is checked."
        )
    if verdicts.trust_config().revocation.policy_for(impact.org_ca.certificate.to_x509()).check == "off":
        outcome.warnings.append(
            "The revocation policy does not check the org CA's certificates, so sign-on does not read its CRL: "
            "turn it on with manage.py certs revocation set --check crl (or for the org CA alone with --ca THUMBPRINT)."
        )
    return outcome
