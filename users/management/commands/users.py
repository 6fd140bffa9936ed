from users import flows, tokens
from users.management.base import AdminCommand, bad_input, read_password_file
from users.models import Interface, SignOnMode, User


class Command(AdminCommand):
    help = "Manage users and their sign-on modes."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="handler", required=True, metavar="ACTION")

        add = sub.add_parser("add", help="Create a user.")
        add.add_argument("username")
        add.add_argument("--full-name", default="")
        add.add_argument("--email", default="")
        add.add_argument("--admin", action="store_true", help="May administer the service.")
        add.add_argument("--password-file", help="A file whose first line is the password.")

        policy = sub.add_parser("policy", help="Set how a user signs on through one interface.")
        policy.add_argument("username")
        policy.add_argument("--interface", required=True, choices=Interface.values)
        policy.add_argument("--mode", required=True, choices=SignOnMode.values)

        listing = sub.add_parser("list", help="List users.")
        listing.add_argument("--json", action="store_true")

        password = sub.add_parser("set-password", help="Set a user's password.")
        password.add_argument("username")
        password.add_argument("--password-file", required=True)

        delete = sub.add_parser(
            "delete", help="Delete a user with their certificate entries, holding tank and home folder."
        )
        delete.add_argument("username")

        defaults = sub.add_parser("defaults", help="Show or set the sign-on mode new users get.")
        defaults.add_argument("--interface", choices=Interface.values)
        defaults.add_argument("--mode", choices=SignOnMode.values)

        token = sub.add_parser("token", help="Personal API tokens.").add_subparsers(
            dest="action", required=True, metavar="ACTION"
        )
        p = token.add_parser("create", help="Create a token for a user; it is printed this once.")
        p.add_argument("username")
        p.add_argument("--name", required=True, help="What the token is for, e.g. the script that uses it.")
        p.add_argument("--expires-days", type=int, help=f"Expire after this many days (1 to {tokens.MAX_EXPIRY_DAYS}).")
        p.set_defaults(handler="token_create")
        p = token.add_parser("list", help="List tokens (never the tokens themselves).")
        p.add_argument("username", nargs="?", help="Only this user's tokens.")
        p.add_argument("--json", action="store_true")
        p.set_defaults(handler="token_list")
        p = token.add_parser("revoke", help="Revoke a token by its id (see list).")
        p.add_argument("id", type=int)
        p.set_defaults(handler="token_revoke")

    def do_add(self, username, full_name, email, admin, password_file, **_):
        password = read_password_file(password_file) if password_file else None
        user = flows.create_user(
            username, self.actor, password=password, full_name=full_name, email=email, is_admin=admin
        )
        role = "administrator" if user.is_admin else "user"
        self.say(
            f"Created {role} '{user.username}' (HTTPS: {user.https_mode}, FTPS: {user.ftps_mode}"
            f"{', with a password' if password else ', no password set'})."
        )

    def do_policy(self, username, interface, mode, **_):
        self.say(flows.set_sign_on_mode(self.user(username), interface, mode, self.actor))

    def do_delete(self, username, **_):
        self.say(flows.delete_user(self.user(username), self.actor))

    def do_set_password(self, username, password_file, **_):
        self.say(flows.set_password(self.user(username), read_password_file(password_file), self.actor))

    def do_defaults(self, interface, mode, **_):
        if (interface is None) != (mode is None):
            raise bad_input("Give both --interface and --mode to change a default, or neither to show them.")
        if interface is not None:
            self.say(flows.set_interface_default(interface, mode, self.actor))
            return
        for name, value in flows.interface_defaults().items():
            self.say(f"{name}: {value}")

    def do_list(self, json, **_):
        users = list(User.objects.all())
        if json:
            self.emit_json([flows.user_as_dict(u) for u in users])
            return
        if not users:
            self.say("No users yet.")
            return
        width = max(len(u.username) for u in users)
        for u in users:
            flags = " ".join(f for f, on in (("admin", u.is_admin), ("inactive", not u.is_active)) if on)
            self.say(
                f"{u.username:<{width}}  HTTPS {u.https_mode:<17}  FTPS {u.ftps_mode:<17}  "
                f"{u.full_name}{'  [' + flags + ']' if flags else ''}"
            )

    def do_token_create(self, username, name, expires_days, **_):
        token, raw = tokens.create_token(self.user(username), name, self.actor, expires_days=expires_days)
        until = f"valid until {token.expires_at:%Y-%m-%d}" if token.expires_at else "with no expiry"
        self.say(f"Created API token '{token.name}' (id {token.pk}) for {token.user.username}, {until}.")
        self.say("It is shown this once; keep it secret:")
        self.say(raw)

    def do_token_list(self, username, json, **_):
        found = list(tokens.tokens_of(self.user(username) if username else None))
        if json:
            self.emit_json([tokens.token_as_dict(t) for t in found])
            return
        if not found:
            self.say("No API tokens.")
        for t in found:
            used = (
                f"last used {t.last_used_at:%Y-%m-%d %H:%M} from {t.last_used_from or '?'}"
                if t.last_used_at
                else "never used"
            )
            until = f"until {t.expires_at:%Y-%m-%d}" if t.expires_at else "no expiry"
            self.say(f"{t.pk:>5}  {t.user.username:<16} {t.name:<24} {t.state:<8} {until}, {used}")

    def do_token_revoke(self, id, **_):
        self.say(tokens.revoke_token(id, self.actor))
