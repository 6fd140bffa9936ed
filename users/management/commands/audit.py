from audit import log
from audit.log import event_as_dict
from users.management.base import AdminCommand, bad_input


class Command(AdminCommand):
    help = "Read the audit log: who changed what, when and from where."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="handler", required=True, metavar="ACTION")
        listing = sub.add_parser(
            "list", help="List events, oldest first: the most recent ones, or those after a given id (for polling)."
        )
        listing.add_argument("--json", action="store_true")
        listing.add_argument("--user", default="", help="Events by or about this user.")
        listing.add_argument("--action", default="", help="Only this action (e.g. signon.refused).")
        listing.add_argument("--after-id", type=int, help="Only events recorded after the event with this id.")
        listing.add_argument("--limit", type=int, default=100, help="At most this many events (default 100).")

    def do_list(self, json, user, action, after_id, limit, **_):
        if limit < 1:
            raise bad_input("--limit must be at least 1.")
        found = log.events(username=user, action=action)
        if after_id is not None:
            # Polling: the next events in the order they were recorded; ids only grow.
            events = list(found.filter(pk__gt=after_id).order_by("id")[:limit])
        else:
            events = list(found.order_by("-at", "-id")[:limit])[::-1]
        if json:
            self.emit_json([event_as_dict(e) for e in events])
            return
        if not events:
            self.say("No audit events match.")
        for e in events:
            repeated = f" (and {e.repeats} more times until {e.last_at:%H:%M:%S})" if e.repeats else ""
            self.say(f"{e.pk:>7}  {e.at:%Y-%m-%d %H:%M:%S}  {e.actor_name or '-'}  {e.action}: {e.summary}{repeated}")
