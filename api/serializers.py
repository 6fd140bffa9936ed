"""The shapes of the API's bodies, for the OpenAPI description and for typing input.

Output is built by the same functions as the command line's JSON (``user_as_dict``,
``Credential.as_dict``, ``verdict_as_dict`` ...); these serializers describe it. Input is typed
here, then judged by the pages' forms and the use cases.
"""

from rest_framework import serializers

from certs.flows import RECORD_AS
from certs.issuing import KEY_TYPES, MAX_CA_DAYS, MAX_CLIENT_DAYS, PKCS12_FORMATS, PKCS12_WHICH
from certs.models import CredentialKind, TankKind
from certs.org_ca import REVOKE_REASONS
from files.models import Direction, Result
from users.models import Interface, SignOnMode

ALLOW_SHARED = "Add it even though other users' sign-on depends on the same entry (refused with 409 without)."


class Problem(serializers.Serializer):
    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField(help_text="One sentence a person understands.")
    instance = serializers.CharField(required=False)
    errors = serializers.ListField(
        child=serializers.DictField(), required=False, help_text="The fields at fault: {field, pointer, detail}."
    )


class Message(serializers.Serializer):
    message = serializers.CharField(help_text="What was done, as the command line says it.")


class WhoAmI(serializers.Serializer):
    authenticated = serializers.BooleanField()
    username = serializers.CharField(allow_null=True)
    method = serializers.CharField(allow_null=True, help_text="certificate, certificate+password, password or token")
    rule = serializers.CharField(allow_null=True, help_text="thumbprint, cn or match_cn, for a certificate")
    is_admin = serializers.BooleanField()


# --- users -------------------------------------------------------------------------------------


class User(serializers.Serializer):
    username = serializers.CharField()
    full_name = serializers.CharField(allow_blank=True)
    email = serializers.CharField(allow_blank=True)
    is_active = serializers.BooleanField()
    is_admin = serializers.BooleanField()
    https_mode = serializers.ChoiceField(SignOnMode.choices)
    ftps_mode = serializers.ChoiceField(SignOnMode.choices)
    date_joined = serializers.DateTimeField()


class UserPage(serializers.Serializer):
    results = User(many=True)
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)


class UserCreate(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    full_name = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    email = serializers.CharField(max_length=254, required=False, default="", allow_blank=True)
    is_admin = serializers.BooleanField(required=False, default=False)
    password = serializers.CharField(
        required=False, allow_blank=True, trim_whitespace=False, write_only=True, help_text="Optional."
    )


class UserUpdate(serializers.Serializer):
    full_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    email = serializers.CharField(max_length=254, required=False, allow_blank=True)
    is_active = serializers.BooleanField(required=False)
    is_admin = serializers.BooleanField(required=False)


class DeletionPreview(serializers.Serializer):
    # The figures the use cases report (``USER_DELETION_REPORTS``), as this API names them.
    COUNTS = ("profile_entries", "issued_certificates", "tank_entries", "files", "file_bytes")

    username = serializers.CharField()
    removed = serializers.ListField(
        child=serializers.CharField(), help_text="What goes with them, in the sentences the confirmation page shows."
    )
    profile_entries = serializers.IntegerField(help_text="Thumbprints and CNs on the profile.")
    issued_certificates = serializers.IntegerField(help_text="Of those, certificates issued by the org CA.")
    tank_entries = serializers.IntegerField(help_text="Entries waiting in their holding tank.")
    files = serializers.IntegerField(help_text="Files in their home folder.")
    file_bytes = serializers.IntegerField(help_text="Their total size in bytes.")
    refused = serializers.CharField(
        allow_null=True, help_text="Why deleting them would be refused (yourself, the last administrator), or null."
    )


class Password(serializers.Serializer):
    password = serializers.CharField(trim_whitespace=False, write_only=True)


class Policies(serializers.Serializer):
    https = serializers.ChoiceField(SignOnMode.choices)
    ftps = serializers.ChoiceField(SignOnMode.choices)


class Policy(serializers.Serializer):
    mode = serializers.ChoiceField(SignOnMode.choices)


class PolicyResult(serializers.Serializer):
    interface = serializers.ChoiceField(Interface.choices)
    mode = serializers.ChoiceField(SignOnMode.choices)
    message = serializers.CharField()


# --- certificates ------------------------------------------------------------------------------


class Certificate(serializers.Serializer):
    subject = serializers.CharField()
    issuer = serializers.CharField()
    common_name = serializers.CharField(allow_null=True)
    thumbprint = serializers.CharField(help_text="SHA-1, as the specification shows it: '3D17 CFF3 ...'")
    sha256 = serializers.CharField()
    serial = serializers.CharField()
    not_before = serializers.DateTimeField()
    not_after = serializers.DateTimeField()
    is_ca = serializers.BooleanField()
    self_signed = serializers.BooleanField()


class Credential(serializers.Serializer):
    id = serializers.IntegerField()
    user = serializers.CharField()
    kind = serializers.ChoiceField(CredentialKind.choices)
    value = serializers.CharField()
    added_by = serializers.CharField(allow_null=True)
    added_at = serializers.DateTimeField()
    source = serializers.CharField()
    certificate = Certificate(allow_null=True)
    remove_at = serializers.DateTimeField(
        allow_null=True, help_text="Replaced by a renewal: sign-on ignores it from this moment, then it is removed."
    )


class CredentialAdd(serializers.Serializer):
    kind = serializers.ChoiceField(CredentialKind.choices)
    value = serializers.CharField(help_text="A thumbprint in any common notation, or a CN.")
    allow_shared = serializers.BooleanField(required=False, default=False, help_text=ALLOW_SHARED)


class CertificateFile(serializers.Serializer):
    """A certificate file in any format the service reads: PEM, DER, PKCS#7 or PKCS#12."""

    file = serializers.FileField(required=False, help_text="The file itself (multipart/form-data).")
    file_base64 = serializers.CharField(required=False, help_text="The file's bytes, base64-encoded (JSON).")
    pem = serializers.CharField(required=False, help_text="PEM text (JSON).")
    password = serializers.CharField(
        required=False, default="", allow_blank=True, trim_whitespace=False, help_text="For PKCS#12 files."
    )


class CertificateImport(CertificateFile):
    record_as = serializers.ChoiceField(
        list(RECORD_AS),
        required=False,
        default="thumbprint",
        help_text="What goes on the profile: the certificate's thumbprint (this certificate only), its CN (any "
        "certificate with that CN from an approved CA), or both.",
    )
    allow_shared = serializers.BooleanField(required=False, default=False, help_text=ALLOW_SHARED)


class ImportedCertificate(serializers.Serializer):
    certificate = Certificate()
    thumbprint_added = serializers.BooleanField()
    cn_added = serializers.BooleanField()
    self_signed = serializers.BooleanField()
    issuer_approved = serializers.BooleanField()
    notes = serializers.ListField(child=serializers.CharField())
    offer_install = serializers.BooleanField(help_text="Self-signed and not installed: install it to let it connect.")
    issuer_to_approve = Certificate(allow_null=True, help_text="Its issuing CA, known and not approved.")


class ImportResult(serializers.Serializer):
    imported = ImportedCertificate(many=True)
    skipped_ca = serializers.ListField(child=serializers.CharField(), help_text="CA certificates in the file.")


class Issue(serializers.Serializer):
    cn = serializers.CharField(required=False, help_text="Defaults to the username.")
    days = serializers.IntegerField(required=False, default=365, min_value=1, max_value=MAX_CLIENT_DAYS)
    key_type = serializers.ChoiceField(list(KEY_TYPES), required=False, default="ec-p256")
    password = serializers.CharField(
        required=False,
        trim_whitespace=False,
        write_only=True,
        help_text="Protects the PKCS#12 file; one is made up (and returned) when none is given.",
    )
    pkcs12_format = serializers.ChoiceField(
        list(PKCS12_FORMATS),
        required=False,
        default="modern",
        help_text=PKCS12_WHICH + " Modern: AES-256-CBC, PBKDF2-SHA256. Legacy: 3DES, SHA-1 MAC.",
    )


class Revoke(serializers.Serializer):
    reason = serializers.ChoiceField(
        list(REVOKE_REASONS), required=False, default="unspecified", help_text="The CRL reason code."
    )


class Issued(serializers.Serializer):
    credential = Credential()
    certificate = Certificate()
    pkcs12_base64 = serializers.CharField(
        allow_null=True, help_text="The PKCS#12 file (certificate, private key, CA chain), returned this once."
    )
    password = serializers.CharField(allow_null=True, help_text="The PKCS#12 password, when the service made it.")


# --- the stores, Match CN, the org CA ----------------------------------------------------------


class StoreEntry(Certificate):
    added_by = serializers.CharField(allow_null=True)
    added_at = serializers.DateTimeField()


class ApprovedCA(StoreEntry):
    connects = serializers.BooleanField(help_text="Whether certificates it signs can connect at all.")
    reason = serializers.CharField()


class Change(serializers.Serializer):
    message = serializers.CharField()
    changed = serializers.BooleanField()
    warnings = serializers.ListField(child=serializers.CharField())


class Outcome(serializers.Serializer):
    changes = Change(many=True)
    warnings = serializers.ListField(child=serializers.CharField(), help_text="What to know or do next.")


class MatchCN(serializers.Serializer):
    on = serializers.BooleanField()


class MatchCNResult(MatchCN):
    message = serializers.CharField()


class OrgCACreate(serializers.Serializer):
    cn = serializers.CharField()
    key_type = serializers.ChoiceField(list(KEY_TYPES), required=False, default="ec-p256")
    days = serializers.IntegerField(required=False, default=3650, min_value=30, max_value=MAX_CA_DAYS)
    rotate = serializers.BooleanField(required=False, default=False, help_text="Replace the current org CA.")


class OrgCACreated(Outcome):
    org_ca = Certificate()


# --- holding tanks, check, audit ---------------------------------------------------------------


class RenewalOf(serializers.Serializer):
    thumbprint = serializers.CharField()
    username = serializers.CharField()
    kind = serializers.ChoiceField(CredentialKind.choices)
    not_after = serializers.DateTimeField(allow_null=True)


class TankEntry(serializers.Serializer):
    id = serializers.IntegerField()
    user = serializers.CharField(allow_null=True, help_text="Null for the org holding tank.")
    kind = serializers.ChoiceField(TankKind.choices)
    value = serializers.CharField()
    subject = serializers.CharField()
    issuer = serializers.CharField()
    thumbprint = serializers.CharField()
    interface = serializers.ChoiceField(Interface.choices)
    source_address = serializers.CharField(allow_null=True)
    first_seen = serializers.DateTimeField()
    last_seen = serializers.DateTimeField()
    attempts = serializers.IntegerField()
    renewal_of = RenewalOf(
        allow_null=True,
        help_text="The profile entry this certificate looks like the renewal of (same issuer and subject, or same "
        "key; newer validity), or null.",
    )
    revocation = serializers.CharField(
        allow_null=True,
        help_text="What the revocation check found when it was last presented (not revoked, or unknown and let "
        "through by the policy), or null when revocation was not checked.",
    )


class TankAccept(serializers.Serializer):
    user = serializers.CharField(required=False, help_text="For an org-tank entry: whom to assign it to.")
    as_kind = serializers.ChoiceField(
        CredentialKind.choices, required=False, help_text="For an org-tank entry: by thumbprint (default) or CN."
    )
    allow_shared = serializers.BooleanField(required=False, default=False, help_text=ALLOW_SHARED)
    replace = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Accept it as the renewal of the entry in renewal_of: its thumbprint is added and the old one "
        "removed at the old certificate's expiry.",
    )
    keep_old_days = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=0,
        max_value=3650,
        help_text="With replace: remove the old certificate after this many days instead (0: at once).",
    )


class TankAssign(TankAccept):
    user = serializers.CharField(help_text="Whom to assign the org-tank entry to.")


class Check(CertificateFile):
    chain_file = serializers.FileField(required=False, help_text="A chain file (multipart/form-data).")
    chain_file_base64 = serializers.CharField(required=False, help_text="A chain file, base64-encoded (JSON).")
    chain_pem = serializers.CharField(required=False, help_text="Chain certificates as PEM text (JSON).")
    username = serializers.CharField(required=False, allow_blank=True, help_text="Judge for this user only.")


class ChainLink(serializers.Serializer):
    subject = serializers.CharField()
    thumbprint = serializers.CharField()


class RevocationStatus(serializers.Serializer):
    thumbprint = serializers.CharField()
    status = serializers.ChoiceField(["good", "revoked", "unknown", "not_checked"])
    source = serializers.CharField(allow_null=True, help_text="Which CRL the status came from.")
    this_update = serializers.DateTimeField(allow_null=True)
    next_update = serializers.DateTimeField(allow_null=True)
    reason = serializers.CharField()


class Connect(serializers.Serializer):
    ok = serializers.BooleanField()
    reason = serializers.CharField()
    chain = ChainLink(many=True)
    anchor = ChainLink(allow_null=True)
    revocation = RevocationStatus(
        many=True, help_text="One per certificate on the path, from the certificate up: 'certs check --json'."
    )


class Authenticate(serializers.Serializer):
    ok = serializers.BooleanField()
    user = serializers.CharField(allow_null=True)
    rule = serializers.ChoiceField(["thumbprint", "cn", "match_cn"], allow_null=True)
    reasons = serializers.ListField(child=serializers.CharField())


class Verdict(serializers.Serializer):
    category = serializers.ChoiceField(["cannot_connect", "connects_only", "authenticates"])
    category_text = serializers.CharField()
    connect = Connect()
    authenticate = Authenticate()


class AuditEvent(serializers.Serializer):
    id = serializers.IntegerField()
    at = serializers.DateTimeField()
    actor = serializers.CharField(allow_null=True)
    action = serializers.CharField()
    summary = serializers.CharField()
    target = serializers.CharField(allow_null=True)
    source_address = serializers.CharField(allow_null=True)
    detail = serializers.DictField()
    repeats = serializers.IntegerField(help_text="How many more times the same happened (counted later).")
    last_at = serializers.DateTimeField(allow_null=True)


class AuditPage(serializers.Serializer):
    results = AuditEvent(many=True)
    next = serializers.URLField(allow_null=True, help_text="Polling (after_id): always the address to poll next.")
    previous = serializers.URLField(allow_null=True)


class PageQuery(serializers.Serializer):
    """How much of a listing, and from where: its pages newest first, or polling after an id."""

    after_id = serializers.IntegerField(
        required=False, min_value=0, help_text="Polling: the entries after this one, oldest first."
    )
    cursor = serializers.CharField(required=False, max_length=200, help_text="A page of the newest-first listing.")
    limit = serializers.IntegerField(required=False, default=100, min_value=1, max_value=1000)


class AuditQuery(PageQuery):
    user = serializers.CharField(required=False, default="", allow_blank=True, max_length=150)
    action = serializers.CharField(required=False, default="", allow_blank=True, max_length=64)
    date_from = serializers.DateField(required=False)
    date_to = serializers.DateField(required=False)


# --- transfers ---------------------------------------------------------------------------------


class Transfer(serializers.Serializer):
    id = serializers.IntegerField()
    user = serializers.CharField(help_text="Whose home folder (kept after the user is deleted).")
    actor = serializers.CharField(allow_null=True, help_text="Who moved the file, when not the folder's owner.")
    interface = serializers.ChoiceField(Interface.choices)
    direction = serializers.ChoiceField(Direction.choices)
    path = serializers.CharField(help_text="The file, inside the home folder.")
    size = serializers.IntegerField(help_text="Bytes that crossed the network.")
    offset = serializers.IntegerField(help_text="Where a resumed transfer started (0 for a whole file).")
    sha256 = serializers.CharField(allow_null=True, help_text="Of the whole file; null when it did not complete.")
    result = serializers.ChoiceField(Result.choices)
    reason = serializers.CharField(allow_blank=True, help_text="Why it did not complete.")
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField()
    source_address = serializers.CharField(allow_null=True)


class TransferPage(serializers.Serializer):
    results = Transfer(many=True)
    next = serializers.URLField(allow_null=True, help_text="Polling (after_id): always the address to poll next.")
    previous = serializers.URLField(allow_null=True)


# --- revocation --------------------------------------------------------------------------------


class Crl(serializers.Serializer):
    """A stored CRL, as ``certs crls list --json`` prints it."""

    id = serializers.IntegerField()
    issuer = serializers.CharField()
    kind = serializers.ChoiceField(["full", "delta"])
    number = serializers.CharField(allow_null=True, help_text="The CRL number, as decimal text.")
    delta_base = serializers.CharField(allow_null=True, help_text="A delta CRL's base CRL number.")
    this_update = serializers.DateTimeField()
    next_update = serializers.DateTimeField(allow_null=True)
    age_hours = serializers.FloatField()
    freshness = serializers.ChoiceField(
        ["fresh", "soon stale", "stale", "no next update"], help_text="'soon stale': next update within a day."
    )
    entries = serializers.IntegerField(help_text="How many certificates it revokes.")
    signer = serializers.CharField(help_text="The thumbprint of the CA certificate whose key verified it.")
    added_by = serializers.CharField(allow_null=True)
    added_at = serializers.DateTimeField()


class CrlFile(serializers.Serializer):
    """A CRL file, DER or PEM (any number of CRLs, and a separate CRL-signing certificate beside
    them), as JSON, multipart/form-data, or the raw body."""

    file = serializers.FileField(required=False, help_text="The file itself (multipart/form-data).")
    file_base64 = serializers.CharField(required=False, help_text="The file's bytes, base64-encoded (JSON).")
    pem = serializers.CharField(required=False, help_text="PEM text (JSON).")


class CrlsAdded(Outcome):
    crls = Crl(many=True, help_text="The CRLs stored by this request.")
    refused = serializers.ListField(
        child=serializers.CharField(), help_text="CRLs in the file that were refused, each with its reason."
    )


class RevocationPolicy(serializers.Serializer):
    check = serializers.ChoiceField(["off", "crl", "ocsp", "crl+ocsp"])
    when_unknown = serializers.ChoiceField(["refuse", "allow"])
    grace_hours = serializers.IntegerField()
    set_by = serializers.CharField(allow_null=True)
    set_at = serializers.DateTimeField(allow_null=True)


class RevocationOverride(RevocationPolicy):
    ca = serializers.CharField(help_text="The CA's thumbprint.")
    subject = serializers.CharField(allow_null=True)


class Revocation(serializers.Serializer):
    """As ``certs revocation show --json`` prints it."""

    default = RevocationPolicy()
    overrides = RevocationOverride(many=True)


class RevocationSet(serializers.Serializer):
    """Judged by the same use case as ``certs revocation set``, in its words."""

    check = serializers.CharField(
        help_text="off, crl, ocsp or crl+ocsp (CRL first, then OCSP when the CRLs cannot decide)."
    )
    when_unknown = serializers.CharField(
        required=False, help_text="refuse or allow; a new policy refuses unless told otherwise."
    )
    grace_hours = serializers.IntegerField(required=False, help_text="Hours past a CRL's next update it still counts.")


class RevocationChanged(Outcome):
    revocation = Revocation(help_text="Every policy, after the change.")


class RevocationRemoved(Message):
    revocation = Revocation(help_text="Every policy, after the change.")
