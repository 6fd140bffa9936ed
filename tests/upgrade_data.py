"""A database as the release before the layout change left it, for the upgrade test.

``fill()`` runs inside Django against a database migrated only to that release's migrations
(``PREVIOUS_RELEASE``) and writes rows through the *historical* models, exactly as that
release stored them (keys computed by hand, the audit log still in the users app). It prints,
as JSON, what it wrote, so that the test can find every row again after the upgrade.

Run as: python -c "import django; django.setup(); from tests.upgrade_data import fill; fill(DIR)"
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

# The last migration of each app in the release before the layout change.
PREVIOUS_RELEASE = [("users", "0004_audit_repeats"), ("certs", "0003_trust_settings_row")]


def fill(directory: str) -> None:
    from cryptography.hazmat.primitives import serialization
    from django.conf import settings
    from django.contrib.auth.hashers import make_password
    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    from certs import issuing
    from certs.x509 import format_thumbprint, name_key, summarize
    from tests.pki import make_client, make_intermediate, make_root

    apps = MigrationLoader(connection).project_state(PREVIOUS_RELEASE).apps
    User = apps.get_model("users", "User")
    InterfaceDefault = apps.get_model("users", "InterfaceDefault")
    AuditEvent = apps.get_model("users", "AuditEvent")
    Certificate = apps.get_model("certs", "Certificate")
    StoreEntry = apps.get_model("certs", "StoreEntry")
    TrustSettings = apps.get_model("certs", "TrustSettings")
    OrgCA = apps.get_model("certs", "OrgCA")
    Credential = apps.get_model("certs", "Credential")
    TankEntry = apps.get_model("certs", "TankEntry")

    folder = Path(directory)
    now = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)

    def user(username, full_name="", **fields):
        return User.objects.create(
            username=username,
            username_key=name_key(username),
            full_name=full_name,
            full_name_key=name_key(full_name),
            password=make_password("correct horse battery"),
            **fields,
        )

    alice = user("alice", "Alice Admin", email="alice@example.com", is_admin=True)
    rich = user("rich", "Rich", email="rich@example.com", https_mode="cert", ftps_mode="cert-or-password")
    bob = user("Bob.Smith", "Bob Smith", https_mode="cert-and-password")
    user("gone", "Someone Inactive", is_active=False)
    InterfaceDefault.objects.create(interface="https", mode="cert-or-password")
    InterfaceDefault.objects.create(interface="ftps", mode="cert")

    toot = make_root("Toot")
    chug = make_intermediate("Chug and Ring", toot)
    verisign = make_root("Verisign")
    frank = make_client("Frank", chug)
    dick = make_client("Dick", chug)
    stranger = make_client("Zed Unknown", chug)
    org_cert, org_key = issuing.create_ca("Example Org CA", "ec-p256", 3650)

    rows = {}

    def certificate(name, cert):
        s = summarize(cert)
        rows[name] = Certificate.objects.create(
            der=cert.public_bytes(serialization.Encoding.DER),
            sha1=s.sha1,
            sha256=s.sha256,
            subject=s.subject,
            issuer=s.issuer,
            common_name=s.common_name or "",
            subject_display=s.subject_display,
            issuer_display=s.issuer_display,
            serial=s.serial,
            not_before=s.not_before,
            not_after=s.not_after,
            is_ca=s.is_ca,
            self_signed=s.self_signed,
        )
        (folder / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return rows[name]

    for name, issued in [("toot", toot), ("chug", chug), ("verisign", verisign), ("frank", frank), ("dick", dick)]:
        certificate(name, issued.cert)
    certificate("stranger", stranger.cert)
    certificate("org_ca", org_cert)

    stores = [("root", "toot"), ("root", "org_ca"), ("intermediate", "chug"), ("approved", "chug")]
    stores += [("approved", "verisign"), ("approved", "org_ca")]
    for store, name in stores:
        StoreEntry.objects.create(
            store=store, certificate=rows[name], added_by=alice, added_by_name="alice", added_at=now
        )
    TrustSettings.objects.filter(pk=1).update(match_cn=True, generation=41)
    OrgCA.objects.create(
        certificate=rows["org_ca"],
        encrypted_key=issuing.encrypt_private_key(org_key, settings.KEY_ENCRYPTION_KEY),
        is_active=True,
        created_by=alice,
        created_by_name="alice",
        created_at=now,
    )

    credentials = [
        (rich, "thumbprint", rows["frank"].sha1, rows["frank"], "import"),
        (rich, "cn", "Dick", None, "manual"),
        (bob, "thumbprint", rows["dick"].sha1, rows["dick"], "holding tank"),
    ]
    for owner, kind, value, cert, source in credentials:
        Credential.objects.create(
            user=owner,
            kind=kind,
            value=value,
            key=value if kind == "thumbprint" else name_key(value),
            certificate=cert,
            added_by=None,
            added_by_name="command line (root)",
            added_at=now,
            source=source,
        )

    tank = [
        (rich, "thumbprint", rows["stranger"].sha1),
        (rich, "cn", "Zed Unknown"),
        (None, "certificate", rows["stranger"].sha1),
    ]
    for owner, kind, value in tank:
        TankEntry.objects.create(
            user=owner,
            kind=kind,
            value=value,
            key=name_key(value) if kind == "cn" else value,
            certificate=rows["stranger"],
            interface="https",
            source_address="192.0.2.7",
            first_seen=now,
            last_seen=now,
            attempts=3,
        )

    events = [
        (alice, "alice", "user.create", "Created user 'rich'.", rich, {"https_mode": "cert"}, "192.0.2.1", 0),
        (
            None,
            "sign-on",
            "signon.success",
            "rich signed on over HTTPS by certificate (thumbprint).",
            rich,
            {"interface": "https", "reasons": ["Thumbprint 50EF … is on rich's profile — ✓"]},
            "192.0.2.7",
            12,
        ),
        (None, "command line (root)", "root.add", "Added 'Toot' to the trusted root store.", None, {}, None, 0),
    ]
    for actor, actor_name, action, summary, target, detail, address, repeats in events:
        AuditEvent.objects.create(
            at=now,
            actor=actor,
            actor_name=actor_name,
            action=action,
            summary=summary,
            target_user=target,
            target_name=target.username if target else "",
            detail=detail,
            source_address=address,
            repeats=repeats,
            last_at=now + dt.timedelta(seconds=30) if repeats else None,
        )

    written = {
        "users": sorted(User.objects.values_list("username", flat=True)),
        "roots": sorted(format_thumbprint(rows[n].sha1) for s, n in stores if s == "root"),
        "intermediates": sorted(format_thumbprint(rows[n].sha1) for s, n in stores if s == "intermediate"),
        "cas": sorted(format_thumbprint(rows[n].sha1) for s, n in stores if s == "approved"),
        "org_ca": format_thumbprint(rows["org_ca"].sha1),
        "credentials": {
            u.username: sorted(
                format_thumbprint(c.value) if c.kind == "thumbprint" else c.value
                for c in Credential.objects.filter(user=u)
            )
            for u in (rich, bob)
        },
        "tank": sorted(
            (t.user.username if t.user_id else "", t.kind, t.attempts) for t in TankEntry.objects.select_related("user")
        ),
        "audit": [
            {"action": a, "summary": s, "actor": n, "target": t.username if t else None, "repeats": r, "detail": d}
            for _, n, a, s, t, d, _, r in events
        ],
    }
    json.dump(written, sys.stdout, ensure_ascii=False)
