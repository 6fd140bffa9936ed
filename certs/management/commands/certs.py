import os
import tempfile
from pathlib import Path

from certs import chain as chain_picture
from certs import crls as crl_store
from certs import flows, ocsp_client, org_ca, reports, self_service, tank, verdicts
from certs import org_ca as org_ca_flows
from certs.flows import FlowError
from certs.issuing import KEY_TYPES, MAX_CLIENT_DAYS, PKCS12_FORMATS, IssuingError
from certs.loading import CertificateLoadError, load_certificates
from certs.models import (
    Credential,
    CredentialKind,
    OrgCA,
    RevocationCheck,
    SelfRenewal,
    Store,
    StoreEntry,
    TankEntry,
    TrustSettings,
    WhenUnknown,
)
from certs.trust import RULE_TEXT
from certs.x509 import ThumbprintError, format_fingerprint, format_thumbprint, sha1_thumbprint, sha256_fingerprint
from users.management.base import AdminCommand, bad_input, read_file, read_password_file

STORE_AREAS = {"roots": Store.ROOT, "intermediates": Store.INTERMEDIATE, "cas": Store.APPROVED}
ALLOW_SHARED_HELP = "Add it even though it concerns other users' sign-on too (refused without)."


def read_certificates(path: str, password: str | None = None):
    try:
        return load_certificates(read_file(path), password, filename=path)
    except CertificateLoadError as exc:
        raise bad_input(f"{path}: {exc}") from None


class Command(AdminCommand):
    help = "Manage trusted roots, intermediate and approved CAs, user certificates and the holding tank."
    explained = (*AdminCommand.explained, FlowError, CertificateLoadError, ThumbprintError, IssuingError)

    def explain(self, error: Exception) -> str:
        if isinstance(error, flows.SharedEntry):
            return f"{error} Give --allow-shared to share it anyway."
        return super().explain(error)

    def add_arguments(self, parser):
        areas = parser.add_subparsers(dest="area", required=True, metavar="AREA")

        for area, store in STORE_AREAS.items():
            phrase = Store(store).phrase
            sub = areas.add_parser(area, help=f"{Store(store).label}.").add_subparsers(
                dest="action", required=True, metavar="ACTION"
            )
            add = sub.add_parser("add", help=f"Add certificates from files to {phrase}.")
            add.add_argument("files", nargs="+", metavar="FILE")
            add.add_argument("--password-file", help="Password of PKCS#12 files.")
            add.set_defaults(handler="store_add", store=store)
            listing = sub.add_parser("list", help=f"List {phrase}.")
            listing.add_argument("--json", action="store_true")
            listing.set_defaults(handler="store_list", store=store)
            remove = sub.add_parser("remove", help=f"Remove a certificate from {phrase}.")
            remove.add_argument("thumbprint")
            remove.set_defaults(handler="store_remove", store=store)

        match = areas.add_parser("match-cn", help="Show or set Match Cert CN to Username/Full Name.")
        match.add_argument("state", nargs="?", choices=["on", "off"])
        match.set_defaults(handler="match_cn")

        auto = areas.add_parser(
            "auto-renew",
            help="Show or set Accept renewals automatically (only while the old certificate is valid and the "
            "renewal's issuer is an approved CA).",
        )
        auto.add_argument("state", nargs="?", choices=["on", "off"])
        auto.set_defaults(handler="auto_renew")

        own = areas.add_parser(
            "self-renewal",
            help="Show or set whether users renew certificates the org CA issued them on their own page: off, "
            "approval (the renewal waits in the holding tank) or automatic.",
        )
        own.add_argument("mode", nargs="?", choices=SelfRenewal.values)
        own.set_defaults(handler="self_renewal")

        user = areas.add_parser("user", help="Certificates on one user's profile.")
        user.add_argument("username")
        actions = user.add_subparsers(dest="action", required=True, metavar="ACTION")
        p = actions.add_parser("add-thumbprint", help="Assign a thumbprint (any common notation).")
        p.add_argument("thumbprint")
        p.add_argument("--allow-shared", action="store_true", help=ALLOW_SHARED_HELP)
        p.set_defaults(handler="user_add_thumbprint")
        p = actions.add_parser("add-cn", help="Assign a CN (authenticates only with an approved CA).")
        p.add_argument("cn")
        p.add_argument("--allow-shared", action="store_true", help=ALLOW_SHARED_HELP)
        p.set_defaults(handler="user_add_cn")
        p = actions.add_parser("import", help="Record the certificates in a file on the profile.")
        p.add_argument("file")
        p.add_argument("--password-file", help="Password of a PKCS#12 file.")
        p.add_argument(
            "--as",
            dest="record_as",
            choices=list(flows.RECORD_AS),
            default="thumbprint",
            help="Record each certificate by its thumbprint (the default), its CN, or both.",
        )
        p.add_argument("--allow-shared", action="store_true", help=ALLOW_SHARED_HELP)
        p.set_defaults(handler="user_import")
        p = actions.add_parser("list", help="List the profile's thumbprints and CNs.")
        p.add_argument("--json", action="store_true")
        p.set_defaults(handler="user_list")
        p = actions.add_parser("remove", help="Remove a thumbprint or CN by its id (see list).")
        p.add_argument("id", type=int)
        p.set_defaults(handler="user_remove")

        tank = areas.add_parser("tank", help="The holding tank.").add_subparsers(
            dest="action", required=True, metavar="ACTION"
        )
        p = tank.add_parser("list", help="List pending entries.")
        p.add_argument("--json", action="store_true")
        who = p.add_mutually_exclusive_group()
        who.add_argument("--user", help="Only this user's tank.")
        who.add_argument("--org", action="store_true", help="Only the org tank (certificates naming no user).")
        p.set_defaults(handler="tank_list")
        p = tank.add_parser("accept", help="Accept an entry into a profile.")
        p.add_argument("id", type=int)
        p.add_argument("--user", help="For an org-tank entry: the user to assign it to.")
        p.add_argument(
            "--as", dest="as_kind", choices=CredentialKind.values, help="For an org-tank entry: by thumbprint or CN."
        )
        p.add_argument("--allow-shared", action="store_true", help=ALLOW_SHARED_HELP)
        p.add_argument(
            "--replace",
            action="store_true",
            help="Accept it as the renewal of the certificate it renews (see list): its thumbprint is added and the "
            "old one removed at the old certificate's expiry.",
        )
        p.add_argument(
            "--keep-old-days",
            type=int,
            metavar="N",
            help="With --replace: remove the old certificate after N days instead (0: at once).",
        )
        p.set_defaults(handler="tank_accept")
        p = tank.add_parser("remove", help="Remove an entry.")
        p.add_argument("id", type=int)
        p.set_defaults(handler="tank_remove")

        org_ca = areas.add_parser("org-ca", help="The organisational CA.").add_subparsers(
            dest="action", required=True, metavar="ACTION"
        )
        p = org_ca.add_parser("create", help="Create the org CA (installed and approved at once).")
        p.add_argument("--cn", required=True)
        p.add_argument("--key", choices=list(KEY_TYPES), default="ec-p256")
        p.add_argument("--days", type=int, default=10 * 365)
        p.add_argument("--rotate", action="store_true", help="Replace the current org CA.")
        p.set_defaults(handler="org_ca_create")
        p = org_ca.add_parser("show", help="Show the org CA.")
        p.add_argument("--json", action="store_true")
        p.set_defaults(handler="org_ca_show")

        p = areas.add_parser("issue", help="Create a certificate for a user, signed by the org CA.")
        p.add_argument("username")
        p.add_argument("--out", required=True, metavar="FILE.p12")
        p.add_argument("--password-file", required=True)
        p.add_argument("--cn", help="Defaults to the username.")
        p.add_argument("--days", type=int, default=365, help=f"1 to {MAX_CLIENT_DAYS}.")
        p.add_argument("--key", choices=list(KEY_TYPES), default="ec-p256")
        p.add_argument(
            "--format",
            dest="pkcs12_format",
            choices=list(PKCS12_FORMATS),
            default="modern",
            help="PKCS#12 encryption: modern (AES-256, PBKDF2-SHA256; the default) or legacy (3DES, SHA-1 MAC) for "
            "Windows Server 2016 and older and older macOS.",
        )
        p.set_defaults(handler="issue")

        p = areas.add_parser(
            "enrol",
            help="Approve one first enrolment over EST (simpleenroll) for a user; prints the one-time secret once.",
        )
        p.add_argument("username")
        p.add_argument("--cn", help="Defaults to the username.")
        p.add_argument("--days", type=int, default=365, help=f"The certificate's validity, 1 to {MAX_CLIENT_DAYS}.")
        p.add_argument("--hours", type=int, default=72, help="How long the enrolment stays open (default 72).")
        p.set_defaults(handler="enrol")
        p = areas.add_parser("revoke", help="Revoke a certificate the org CA issued (and take it off the profile).")
        p.add_argument("username")
        p.add_argument("thumbprint")
        p.add_argument("--reason", choices=list(org_ca_flows.REVOKE_REASONS), default="unspecified")
        p.set_defaults(handler="revoke")

        p = areas.add_parser("check", help="Explain whether a certificate connects and whom it authenticates.")
        p.add_argument("cert_file", metavar="CERT_FILE")
        p.add_argument("--chain", metavar="FILE", help="A file with any number of chain certificates.")
        p.add_argument("--user", help="Judge for this user only.")
        p.add_argument("--password-file", help="Password of PKCS#12 files.")
        p.add_argument("--json", action="store_true")
        p.set_defaults(handler="check")

        p = areas.add_parser(
            "expiring",
            help="For cron (daily): removes profile entries replaced by renewals whose time has come; tells each user "
            "whose certificate expires in 30, 14, 7 or 1 days (once each); lists the certificates the app relies on "
            "that expire soon or have expired and mails the admins one digest.",
        )
        p.add_argument("--days", type=int, default=None, help="The window (default: MFT_EXPIRY_WARNING_DAYS, 30).")
        p.add_argument("--json", action="store_true")
        p.add_argument(
            "--no-mail", action="store_true", help="Only print; mail neither the users nor the administrators."
        )
        p.set_defaults(handler="expiring")

        crls = areas.add_parser("crls", help="Certificate revocation lists (CRLs).").add_subparsers(
            dest="action", required=True, metavar="ACTION"
        )
        p = crls.add_parser("add", help="Add CRLs (DER or PEM, full or delta), each verified by a known CA's key.")
        p.add_argument("files", nargs="+", metavar="FILE")
        p.set_defaults(handler="crls_add")
        p = crls.add_parser("list", help="List stored CRLs, with their age and next update.")
        p.add_argument("--json", action="store_true")
        p.set_defaults(handler="crls_list")
        p = crls.add_parser(
            "fetch",
            help="Fetch CRLs from the distribution points of known certificates, and remove stored OCSP "
            "answers past their next update (for cron).",
        )
        p.add_argument("--json", action="store_true")
        p.set_defaults(handler="crls_fetch")
        p = crls.add_parser("remove", help="Remove a CRL by its id (see list).")
        p.add_argument("id", type=int)
        p.set_defaults(handler="crls_remove")

        policy = areas.add_parser("revocation", help="How revocation is checked.").add_subparsers(
            dest="action", required=True, metavar="ACTION"
        )
        p = policy.add_parser("show", help="Show the org default policy and each CA's override.")
        p.add_argument("--json", action="store_true")
        p.set_defaults(handler="revocation_show")
        p = policy.add_parser("set", help="Set the org default policy, or one CA's override with --ca.")
        p.add_argument("--ca", metavar="THUMBPRINT", help="A CA in the root store, intermediate pool or approved list.")
        p.add_argument(
            "--check",
            required=True,
            choices=RevocationCheck.values,
            help="off, crl (stored CRLs), ocsp (the certificate's own responder), or crl+ocsp (CRL, then OCSP "
            "when the CRLs cannot tell).",
        )
        p.add_argument("--when-unknown", choices=WhenUnknown.values, help="Default for a new policy: refuse.")
        p.add_argument("--grace-hours", type=int, metavar="N", help="Hours past a CRL's next update it still counts.")
        p.set_defaults(handler="revocation_set")
        p = policy.add_parser("remove", help="Remove one CA's override: it follows the org default again.")
        p.add_argument("--ca", metavar="THUMBPRINT", required=True)
        p.set_defaults(handler="revocation_remove")

        p = areas.add_parser(
            "export-crls", help="Write every stored CRL as one PEM file for nginx's ssl_crl ('-': stdout)."
        )
        p.add_argument("file")
        p.set_defaults(handler="export_crls")

        p = areas.add_parser("export-roots", help="Write the trusted root store as one PEM bundle ('-': stdout).")
        p.add_argument("file")
        p.set_defaults(handler="export_roots")

    # --- helpers ---------------------------------------------------------------------------

    @staticmethod
    def password(path):
        return read_password_file(path) if path else None

    # --- stores ----------------------------------------------------------------------------

    def report(self, outcome: flows.Outcome) -> None:
        for message in outcome.messages:
            self.say(message)
        for warning in outcome.all_warnings():
            self.warn(warning)

    def do_store_add(self, store, files, password_file, **_):
        password = self.password(password_file)
        certs = [cert for path in files for cert in read_certificates(path, password)]
        self.report(flows.add_to_store(store, certs, self.actor))

    def do_store_list(self, store, json, **_):
        entries = list(StoreEntry.objects.in_store(store))
        if json:
            self.emit_json(
                [
                    {
                        **e.certificate.as_dict(),
                        "added_by": e.added_by_name or None,
                        "added_at": e.added_at.isoformat(),
                    }
                    for e in entries
                ]
            )
            return
        if not entries:
            self.say(f"{Store(store).label} is empty.")
        for e in entries:
            c = e.certificate
            state = " EXPIRED" if c.is_expired else (" expires soon" if c.expires_soon else "")
            self.say(f"{c.thumbprint}  {c.subject_display}  (until {c.not_after:%Y-%m-%d}{state})")
            self.say(f"    SHA-256 {c.fingerprint_sha256}")

    def do_store_remove(self, store, thumbprint, **_):
        self.report(flows.remove_from_store(store, thumbprint, self.actor))

    def do_match_cn(self, state, **_):
        if state is None:
            on = verdicts.trust_config().match_cn
            self.say(f"Match Cert CN to Username/Full Name is {'on' if on else 'off'}.")
            return
        self.say(flows.set_match_cn(state == "on", self.actor))

    def do_auto_renew(self, state, **_):
        if state is None:
            on = TrustSettings.get().auto_accept_renewals
            self.say(f"Accept renewals automatically is {'on' if on else 'off'}.")
            return
        self.say(flows.set_auto_accept_renewals(state == "on", self.actor))

    def do_self_renewal(self, mode, **_):
        if mode is None:
            label = SelfRenewal(TrustSettings.get().self_renewal).label
            self.say(f"Self-service renewal is {label[0].lower()}{label[1:]}.")
            return
        self.say(flows.set_self_renewal(mode, self.actor))

    def do_export_roots(self, file, **_):
        bundle, count = flows.export_roots()
        if count == 0:
            self.warn("The trusted root store is empty: no client certificate can connect.")
        if file == "-":
            self.stdout.write(bundle, ending="")
            return
        self.write_atomically(file, bundle, ".roots-")
        self.say(f"Wrote {count} trusted root certificate{'s' if count != 1 else ''} to {file}.")

    # --- revocation ------------------------------------------------------------------------

    def _batch_work(self) -> None:
        """Run at a lower CPU priority when this is a process of its own (not ``call_command``)."""
        if getattr(self, "_called_from_command_line", False):
            crl_store.yield_to_sign_on()

    def do_crls_add(self, files, **_):
        self._batch_work()
        refusals = []
        for path in files:
            try:
                data = read_file(path, limit=crl_store.MAX_CRL_BYTES)
                outcome, refused = crl_store.add_crl_file(data, self.actor, filename=path)
            except FlowError as exc:
                refusals.append(str(exc))
                continue
            self.report(outcome)
            refusals.extend(refused)
        if refusals:
            for message in refusals[:-1]:
                self.stderr.write(message)
            raise bad_input(refusals[-1])

    def do_crls_list(self, json, **_):
        rows = list(crl_store.stored_crls())
        if json:
            self.emit_json([crl_store.crl_as_dict(row) for row in rows])
            return
        if not rows:
            self.say("No CRL is stored.")
        for row in rows:
            data = crl_store.crl_as_dict(row)
            number = f" number {row.number}" if row.number else ""
            base = f" (delta of {row.delta_base})" if row.is_delta else ""
            until = f"{row.next_update:%Y-%m-%d %H:%M} UTC" if row.next_update else "none given"
            state = data["freshness"].upper() if data["freshness"] in ("stale", "soon stale") else data["freshness"]
            self.say(f"{row.pk:>5}  {row.kind:<5} {row.issuer_display}{number}{base}")
            self.say(
                f"       {row.entry_count} revoked; this update {row.this_update:%Y-%m-%d %H:%M} UTC "
                f"({data['age_hours']} hours old); next update {until}: {state}"
            )

    def do_crls_fetch(self, json, **_):
        self._batch_work()
        results = crl_store.fetch_crls()
        filtered = crl_store.build_missing_filters()
        if filtered:
            TrustSettings.bump()
        # The cron job also clears the OCSP answers that no longer count. The JSON is a list of
        # fetch results, so only the text says what was built and how many answers went.
        pruned = ocsp_client.prune()
        if json:
            self.emit_json([r.as_dict() for r in results])
            return
        if not results:
            self.say("No certificate in the stores or on a profile names an http or https CRL distribution point.")
        for r in results:
            self.say(f"{r.status:<9} {r.url}: {r.message}")
        for crl_id, count in filtered:
            self.say(
                f"Built the serial filter of CRL id {crl_id} ({count} revoked serials), which had none: sign-on "
                "no longer asks the database about each serial it checks against that CRL."
            )
        if pruned:
            self.say(
                f"Removed {pruned} stored OCSP answer{'s' if pruned != 1 else ''} past its next update "
                "(they no longer count)."
            )

    def do_crls_remove(self, id, **_):
        self.say(crl_store.remove_crl(id, self.actor))

    def do_revocation_show(self, json, **_):
        data = crl_store.policies_as_dict()
        if json:
            self.emit_json(data)
            return

        def line(policy):
            if policy["check"] == "off":
                return "off (revocation is not checked)"
            if policy["check"] == "ocsp":
                return f"ocsp, when unknown {policy['when_unknown']}"
            return (
                f"{policy['check']}, when unknown {policy['when_unknown']}, "
                f"{policy['grace_hours']} hours of grace past a CRL's next update"
            )

        self.say(f"Org default: {line(data['default'])}")
        for override in data["overrides"]:
            self.say(f"{override['ca']}  {override['subject'] or ''}: {line(override)}")

    def do_revocation_set(self, ca, check, when_unknown, grace_hours, **_):
        # An org CA made before revocation existed has no CRL yet: sign one first, so that
        # checking never finds the org CA without one.
        org_ca_flows.current_crl()
        self.report(
            crl_store.set_policy(
                self.actor, check=check, ca_thumbprint=ca, when_unknown=when_unknown, grace_hours=grace_hours
            )
        )

    def do_revocation_remove(self, ca, **_):
        self.say(crl_store.remove_policy(self.actor, ca))

    def do_export_crls(self, file, **_):
        text, count, warnings = crl_store.export_crls()
        for warning in warnings:
            self.warn(warning)
        if count == 0:
            self.warn("No CRL is stored: the file is empty, and nginx refuses an empty ssl_crl file.")
        if file == "-":
            self.stdout.write(text, ending="")
            return
        self.write_atomically(file, text, ".crls-")
        self.say(f"Wrote {count} CRL{'s' if count != 1 else ''} to {file}.")

    def write_atomically(self, file, text, prefix):
        # Follow a symlink to the file it names, and never replace anything but a regular file.
        target = Path(file).resolve()
        if target.is_dir():
            raise bad_input(f"{file}: is a directory; give a file name.")
        if target.exists() and not target.is_file():
            raise bad_input(f"{file}: is not a regular file; give a file name.")
        # Write beside the target and rename, so a proxy reloading never reads half a bundle.
        try:
            fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=prefix)
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
            os.chmod(temporary, 0o644)
            os.replace(temporary, target)
        except OSError as exc:
            raise bad_input(f"{file}: cannot be written ({exc.strerror or exc}).") from None

    # --- profiles --------------------------------------------------------------------------

    def do_user_add_thumbprint(self, username, thumbprint, allow_shared, **_):
        credential, added = flows.add_thumbprint(self.user(username), thumbprint, self.actor, allow_shared=allow_shared)
        if added:
            self.say(f"Added thumbprint {credential.shown_value} to {username}'s profile (id {credential.pk}).")
        else:
            self.say(f"Thumbprint {credential.shown_value} is already on {username}'s profile (id {credential.pk}).")

    def do_user_add_cn(self, username, cn, allow_shared, **_):
        user = self.user(username)
        credential, added = flows.add_cn(user, cn, self.actor, allow_shared=allow_shared)
        if added:
            self.say(f"Added CN '{credential.value}' to {user.username}'s profile (id {credential.pk}).")
        else:
            self.say(f"CN '{credential.value}' is already on {user.username}'s profile (id {credential.pk}).")
        if not verdicts.trust_config().approved:
            self.warn("The approved CA list is empty: a CN authenticates only with a certificate from an approved CA.")

    def do_user_import(self, username, file, password_file, allow_shared, record_as, **_):
        user = self.user(username)
        certs = read_certificates(file, self.password(password_file))
        imported, skipped = flows.import_to_profile(
            user, certs, self.actor, allow_shared=allow_shared, record_as=record_as
        )
        for item in imported:
            c = item.certificate
            recorded = ["thumbprint" if item.thumbprint_added else None, "CN" if item.cn_added else None]
            recorded = " and ".join(r for r in recorded if r) or "nothing new"
            self.say(f"'{c.subject_display}' ({c.thumbprint}): recorded {recorded} on {user.username}'s profile.")
            for note in item.notes:
                self.say(f"  {note}")
        if skipped:
            self.say(
                "Not put on the profile (CA certificates in the file): " + ", ".join(f"'{n}'" for n in skipped) + "."
            )

    def do_user_list(self, username, json, **_):
        user = self.user(username)
        credentials = list(Credential.objects.filter(user=user).select_related("certificate", "user"))
        if json:
            self.emit_json([c.as_dict() for c in credentials])
            return
        if not credentials:
            self.say(f"{user.username}'s profile has no client certificates.")
        for c in credentials:
            detail = ""
            if c.certificate_id:
                cert = c.certificate
                detail = f"  {cert.subject_display}, issued by {cert.issuer_display}, until {cert.not_after:%Y-%m-%d}"
            self.say(f"{c.pk:>5}  {c.get_kind_display():<17} {c.shown_value}{detail}")
            if c.remove_at:
                state = "stopped signing on" if c.retired else "stops signing on"
                self.say(f"       Replaced by a renewal: {state} {c.remove_at:%Y-%m-%d %H:%M} UTC; then removed.")
            if c.certificate_id:
                self.say(f"       SHA-256 {c.certificate.fingerprint_sha256}")

    def do_user_remove(self, username, id, **_):
        self.say(flows.remove_credential(self.user(username), id, self.actor))

    # --- holding tank ----------------------------------------------------------------------

    def do_tank_list(self, json, user, org, **_):
        entries = TankEntry.objects.select_related("user", "certificate", "renewal_of__user", "renewal_of__certificate")
        if user:
            entries = entries.filter(user=self.user(user))
        elif org:
            entries = entries.filter(user__isnull=True)
        entries = sorted(entries, key=lambda e: e.renewal_of_id is None)  # renewals first
        if json:
            self.emit_json([e.as_dict() for e in entries])
            return
        if not entries:
            self.say("The holding tank is empty.")
        for e in entries:
            owner = e.user.username if e.user_id else "(org)"
            self.say(
                f"{e.pk:>5}  {owner:<16} {e.get_kind_display():<17} {e.shown_value}  "
                f"seen {e.attempts}x, last {e.last_seen:%Y-%m-%d %H:%M} from {e.source_address or '?'} "
                f"over {e.interface.upper()}"
            )
            if e.renewal_of_id:
                self.say(f"       {e.renewal_phrase}: accept it with --replace")

    def do_tank_accept(self, id, user, as_kind, allow_shared, replace, keep_old_days, **_):
        if keep_old_days is not None and not replace:
            raise bad_input("--keep-old-days goes with --replace.")
        target = self.user(user) if user else None
        self.say(
            tank.accept_tank_entry(
                id,
                self.actor,
                user=target,
                as_kind=as_kind,
                allow_shared=allow_shared,
                replace=replace,
                keep_old_days=keep_old_days,
            )
        )

    def do_tank_remove(self, id, **_):
        self.say(tank.remove_tank_entry(id, self.actor))

    # --- org CA and issuing ----------------------------------------------------------------

    def do_org_ca_create(self, cn, key, days, rotate, **_):
        _, outcome = org_ca.create(cn, self.actor, key_type=key, days=days, rotate=rotate)
        self.report(outcome)

    def do_org_ca_show(self, json, **_):
        current = OrgCA.active()
        if json:
            self.emit_json(current.certificate.as_dict() if current else None)
            return
        if current is None:
            self.say("There is no org CA yet. Create one: manage.py certs org-ca create --cn NAME")
            return
        c = current.certificate
        self.say(f"{c.subject_display} ({c.thumbprint}), valid until {c.not_after:%Y-%m-%d}")

    def do_issue(self, username, out, password_file, cn, days, key, pkcs12_format, **_):
        user = self.user(username)
        password = read_password_file(password_file)
        # Claim the output file first: a file that cannot be written must not cost a certificate.
        try:
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise bad_input(f"{out} exists already; choose another file name or remove it first.") from None
        except OSError as exc:
            raise bad_input(f"{out}: cannot be written ({exc.strerror or exc}).") from None
        try:
            issued = org_ca.issue_certificate(
                user, self.actor, password=password, cn=cn, days=days, key_type=key, pkcs12_format=pkcs12_format
            )
        except BaseException:
            os.close(fd)
            os.unlink(out)
            raise
        with os.fdopen(fd, "wb") as handle:
            handle.write(issued.pkcs12)
        c = issued.certificate
        self.say(
            f"Issued '{c.subject_display}' ({c.thumbprint}) for {user.username}, valid until "
            f"{c.not_after:%Y-%m-%d}; its thumbprint is on the profile (id {issued.credential.pk})."
        )
        self.say(f"Wrote the PKCS#12 file (certificate, private key and CA chain) to {out}.")
        self.say(f"Its encryption: {PKCS12_FORMATS[pkcs12_format]}.")

    def do_enrol(self, username, cn, days, hours, **_):
        user = self.user(username)
        enrolment, secret = self_service.approve_enrolment(user, self.actor, cn=cn, days=days, hours=hours)
        self.say(
            f"Approved one EST enrolment for {user.username} as '{enrolment.cn}', open until "
            f"{enrolment.expires_at:%Y-%m-%d %H:%M} UTC."
        )
        self.say(f"One-time secret (shown only now): {secret}")
        self.say(
            "The client posts its base64 PKCS#10 request to /.well-known/est/simpleenroll with HTTP Basic "
            f"authentication: username {user.username}, password the secret."
        )

    def do_revoke(self, username, thumbprint, reason, **_):
        self.report(org_ca_flows.revoke(self.user(username), thumbprint, self.actor, reason=reason))

    # --- expiry ----------------------------------------------------------------------------

    def do_expiring(self, days, json, no_mail, **_):
        if days is not None and days < 0:
            raise bad_input("--days must be zero or more.")
        days = reports.expiry_window_days() if days is None else days
        removed = tank.remove_replaced(self.actor)
        items = reports.expiring(days)
        owners = reports.OwnerNotices() if no_mail else reports.tell_owners()
        mailed = 0 if no_mail else reports.mail_expiring(items, days, owners)
        if json:
            self.emit_json([item.as_dict() for item in items])
            return
        for message in removed:
            self.say(message)
        if not items:
            self.say(f"No certificate the app relies on expires within {days} days.")
        for item in items:
            c = item.certificate
            state = "EXPIRED" if item.expired else "expires"
            who = f" on {item.user.username}'s profile" if item.user else ""
            self.say(f"{item.kind}{who}: {c.subject_display} ({c.thumbprint}) {state} {c.not_after:%Y-%m-%d}")
        if owners.told:
            names = ", ".join(dict.fromkeys(n.user.username for n in owners.told))
            self.say(f"Told {len(owners.told)} user{'s' if len(owners.told) != 1 else ''} by mail: {names}.")
        if owners.no_email:
            names = ", ".join(dict.fromkeys(n.user.username for n in owners.no_email))
            self.say(f"No email address, so listed to the administrators instead: {names}.")
        if owners.failed:
            names = ", ".join(dict.fromkeys(n.user.username for n in owners.failed))
            self.warn(f"The mail server did not take the mail for {names}; the next run tries again.")
        if mailed:
            self.say(f"Mailed {mailed} administrator{'s' if mailed != 1 else ''}.")

    # --- check -----------------------------------------------------------------------------

    def do_check(self, cert_file, chain, user, password_file, json, **_):
        password = self.password(password_file)
        certs = read_certificates(cert_file, password)
        extra = read_certificates(chain, password) if chain else []
        # The first certificate is the one judged; any others in its file act as its chain.
        cert, chain_certs = certs[0], certs[1:] + extra
        if user is not None:
            user = self.user(user).username
        diagnosis = reports.diagnose(cert, chain_certs, username=user)
        verdict = diagnosis.verdict
        if json:
            self.emit_json(verdicts.verdict_as_dict(verdict))
            return
        connection, auth = verdict.connection, verdict.authentication
        self.say(f"Certificate: {cert.subject.rfc4514_string() or '(empty subject)'}")
        self.say(f"  Thumbprint {format_thumbprint(sha1_thumbprint(cert))}")
        self.say(f"  SHA-256 {format_fingerprint(sha256_fingerprint(cert))}")
        self.say(f"Verdict: {verdict.category_text}")
        self.say(f"Connect: {'yes' if connection.ok else 'no'}. {connection.reason}")
        self.say("Chain, from the certificate up:")
        for box in diagnosis.picture.boxes:
            marks = ", ".join(chain_picture.MARK_TEXT[m] for m in box.marks)
            notes = [marks] if marks else []
            if box.anchor:
                notes.append("trust anchor")
            if box.validity not in ("valid", ""):
                notes.append(box.validity)
            if box.stops_here:
                notes.append("THE PATH STOPS HERE")
            self.say(f"  [{box.subject}]  {box.thumbprint or ''}  ({'; '.join(notes)})")
            if box.link_up:
                arrow = {"verified": "signature verified", "broken": "SIGNATURE DOES NOT VERIFY"}.get(
                    box.link_up, "ISSUER NOT FOUND"
                )
                self.say(f"      ^ {arrow}{': ' + box.link_note if box.link_note else ''}")
        if connection.revocation and all(s.status == "not_checked" for s in connection.revocation):
            self.say("Revocation: not checked (the revocation policy does not check these CAs).")
        elif connection.revocation:
            self.say("Revocation, from the certificate up:")
            for status in connection.revocation:
                self.say(f"  {status.as_dict()['thumbprint']}  {status.status.replace('_', ' ')}: {status.reason}")
        if auth.ok:
            self.say(f"Authenticate: yes, as '{auth.user}' ({RULE_TEXT[auth.rule]}).")
        else:
            self.say("Authenticate: no.")
        for reason in auth.reasons:
            self.say(f"  - {reason}")
