"""A busy organisation's data, with the long names real directories hold, for walking every admin page.

Run inside the app under test (``manage.py shell``): ``seed()`` fills its database and home
folders and returns what the walk needs to reach each page (usernames, keys, fingerprints),
ready for JSON. ``password`` is the walking administrator's.
"""

import datetime as dt

from django.utils import timezone

from audit.models import AuditEvent
from certs import crls, flows, org_ca
from certs.models import Store, TankEntry
from certs.x509 import format_thumbprint, sha1_thumbprint, sha256_fingerprint
from files import flows as file_flows
from files.models import Direction, Result
from signon import flows as signon_flows
from signon.proxy import Presented
from tests.pki import DAY, NOW, crl_der, make_client, make_crl, make_intermediate, make_root
from users import flows as user_flows
from users import tokens
from users.models import Interface, SignOnMode

ACTOR = "walk seed"

# Usernames and full names as long as directories deliver them.
WALKER = "infrastructure.administrator.managed-file-transfer.emea-west"
MAIN = "christopher.montgomery-fitzgerald"
MAIN_FULL = "Christopher Alexander Montgomery-Fitzgerald III (Treasury Operations, EMEA)"
OTHERS = [
    ("anne-sophie.vandenberghe-delacroix", "Anne-Sophie Vandenberghe-Delacroix (Payments Reconciliation)"),
    ("svc-nightly-ledger-export-prod-eu-west", "Nightly ledger export service account, production EU-West"),
    ("maximilian.oberhauser-schwarzenegger", "Maximilian Oberhauser-Schwarzenegger"),
    ("departing.contractor.with.files", "A contractor whose account is about to be deleted"),
]


def seed(password: str) -> dict:
    # The administrator who walks: a long username, as the navigation bar must hold it.
    admin = user_flows.create_user(
        WALKER,
        ACTOR,
        password=password,
        full_name="Administrator of the Managed File Transfer Service (Infrastructure Team)",
        is_admin=True,
    )

    main = user_flows.create_user(MAIN, ACTOR, full_name=MAIN_FULL, email="christopher@finance.example.com")
    main.https_mode = SignOnMode.CERT  # so that a change of mode has certificates to show
    main.save()
    others = [user_flows.create_user(name, ACTOR, full_name=full) for name, full in OTHERS]

    # Trust: a root, an issuing CA under it (in the pool, approved), an approved CA of its own,
    # and the org CA.
    root = make_root("Contoso Enterprise Root Certification Authority 2026 (Offline)")
    issuing = make_intermediate("Contoso Issuing CA for Partner Managed File Transfer G2", root)
    partner_root = make_root("Fabrikam Partner Services Root Certificate Authority R3")
    spare_root = make_root("Northwind Traders Legacy Root CA, not yet trusted anywhere")
    flows.add_to_store(Store.ROOT, [root.cert, partner_root.cert], ACTOR)
    flows.add_to_store(Store.INTERMEDIATE, [issuing.cert], ACTOR)
    flows.add_to_store(Store.APPROVED, [issuing.cert, partner_root.cert], ACTOR)
    flows.keep_certificates(spare_root.cert)  # known to the app, in no store
    org_ca.create("Contoso Managed File Transfer Organisation Certificate Authority", ACTOR)
    flows.set_match_cn(True, ACTOR)

    # Certificates on the main user's profile: thumbprints, and a CN from an approved CA.
    team = "Contoso Treasury Operations London"
    laptops = [make_client(f"{MAIN} workstation {n}", issuing, org=team) for n in ("one", "two", "three")]
    for laptop in laptops:
        flows.keep_certificates(laptop.cert)
        flows.add_thumbprint(main, format_thumbprint(sha1_thumbprint(laptop.cert)), ACTOR)
    cn_credential, _ = flows.add_cn(main, "Christopher Montgomery-Fitzgerald Treasury Desk", ACTOR)
    issued = org_ca.issue_certificate(main, ACTOR, password="a long passphrase for the bundle")
    for user in others[:2]:
        device = make_client(f"{user.username} device", partner_root)
        flows.keep_certificates(device.cert)
        flows.add_thumbprint(user, format_thumbprint(sha1_thumbprint(device.cert)), ACTOR)

    # Holding tanks: certificates presented with the main user's name that connected but did
    # not authenticate him, and some that named nobody (the org tank).
    desktops = [make_client(f"{MAIN} new desktop {n}", issuing, org=team) for n in ("A", "B")]
    for number, desktop in enumerate(desktops):
        signon_flows.sign_on(
            Presented(desktop.cert, (issuing.cert,)), username=MAIN, source_address=f"2001:db8:4d2:17::{number + 10}"
        )
    strangers = [
        make_client(f"Unrecognised scanner appliance {n} in the Rotterdam warehouse", issuing) for n in ("1", "2")
    ]
    for number, stranger in enumerate(strangers):
        signon_flows.sign_on(Presented(stranger.cert, (issuing.cert,)), source_address=f"198.51.100.{number + 20}")
    # Sign-on attempts of every kind, for the overview and the audit log.
    signon_flows.sign_on(Presented(laptops[0].cert, (issuing.cert,)), source_address="203.0.113.7")
    outsider = make_client("Certificate from a root nobody here has ever trusted", make_root("Elsewhere"))
    signon_flows.sign_on(Presented(outsider.cert), username=MAIN, source_address="203.0.113.99")
    for number in range(3):
        AuditEvent.objects.record(
            ACTOR,
            "user.update",
            f"Changed {main.username}'s e-mail address to a much longer one for the Treasury Operations team "
            f"mailbox number {number}.",
            target=main,
            source_address="2001:db8:ffff:ffff:ffff:ffff:ffff:fffe",
        )

    # Files and transfers, with long names.
    home = file_flows.home(main)
    folder = home.root / "Quarterly reconciliation reports for the Treasury Operations team"
    folder.mkdir()
    long_file = "2026-Q3-intercompany-settlement-reconciliation-statement-final-approved-v17.csv"
    (folder / long_file).write_text("account,amount\n")
    (home.root / "readme.txt").write_text("hello\n")
    for number, (direction, result) in enumerate(
        [(Direction.UPLOAD, Result.COMPLETE), (Direction.DOWNLOAD, Result.FAILED), (Direction.UPLOAD, Result.COMPLETE)]
    ):
        file_flows.record_transfer(
            main,
            interface=Interface.FTPS if number % 2 else Interface.HTTPS,
            direction=direction,
            parts=("Quarterly reconciliation reports for the Treasury Operations team", long_file),
            size=123_456_789,
            sha256="ab" * 32,
            result=result,
            reason="" if result == Result.COMPLETE else "The connection was closed by the client before the end.",
            started_at=timezone.now() - dt.timedelta(minutes=5),
            source_address="2001:db8:4d2:17::99",
        )

    # Others' things: an API token, a user with files to delete.
    token, _ = tokens.create_token(others[1], "Nightly ledger export to the data warehouse (production)", ACTOR)
    tokens.create_token(admin, "Monthly user-list export for the identity governance report", ACTOR)
    leaving = others[-1]
    (file_flows.home(leaving).root / "handover notes for the team.txt").write_text("notes\n")

    # Revocation: a CRL of the issuing CA listing serials nobody here holds, a stale one of the
    # partner root, and a policy of its own for the partner root.
    revoked = [(0x7E57_0000_0000 + n, None) for n in range(12)]
    crls.add_crl_file(crl_der(make_crl(issuing, revoked, number=4821)), ACTOR, filename="contoso-issuing-g2.crl")
    crls.add_crl_file(
        crl_der(make_crl(partner_root, this_update=NOW - 9 * DAY, next_update=NOW - DAY, number=17)),
        ACTOR,
        filename="fabrikam-partner-root-r3.crl",
    )
    crls.set_policy(ACTOR, check="crl+ocsp", ca_thumbprint=sha1_thumbprint(partner_root.cert), grace_hours=12)
    crl = crls.stored_crls().filter(issuer=issuing.cert.subject.rfc4514_string()).get()

    user_tank = TankEntry.objects.filter(user=main).order_by("id").first()
    org_tank = TankEntry.objects.filter(user=None).order_by("id").first()
    return {
        "admin": admin.username,
        "main": main.username,
        "leaving": leaving.username,
        "token_owner": others[1].username,
        "token": token.pk,
        "credential": cn_credential.pk,
        "user_tank_entry": user_tank.pk,
        "org_tank_entry": org_tank.pk,
        "presented": user_tank.certificate.sha256,
        "root": sha256_fingerprint(root.cert),
        "intermediate": sha256_fingerprint(issuing.cert),
        "approved": sha256_fingerprint(partner_root.cert),
        "spare": sha256_fingerprint(spare_root.cert),
        "crl": crl.pk,
        "override": sha1_thumbprint(partner_root.cert),
        "laptop": sha256_fingerprint(laptops[0].cert),
        "issued": issued.certificate.sha256,
        "issued_credential": issued.credential.pk,
        "file": f"Quarterly reconciliation reports for the Treasury Operations team/{long_file}",
        "actions": sorted(set(AuditEvent.objects.values_list("action", flat=True))),
        "folder": "Quarterly reconciliation reports for the Treasury Operations team",
    }
