"""Use cases of the organisational CA: create or import it (and rotate it), and issue certificates.

The CA's private key is kept encrypted with the key-encryption key from settings; a
certificate's private key exists only inside the PKCS#12 file handed to the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent

from . import issuing
from .flows import Change, FlowError, Outcome, add_thumbprint, add_to_store, keep_certificates, overlaps
from .models import Certificate, Credential, CredentialKind, OrgCA, Store
from .x509 import CNError, clean_cn


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
    return org_ca, outcome


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
    try:
        cn = clean_cn(cn or user.username)
    except CNError as exc:
        raise FlowError(str(exc)) from None
    refuse_cn_of_another_user(user, cn)
    ca_cert = org_ca.certificate.to_x509()
    ca_key = issuing.decrypt_private_key(org_ca.encrypted_key, settings.KEY_ENCRYPTION_KEY)
    cert, key = issuing.issue_client_certificate(ca_cert, ca_key, cn, key_type, days)
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
