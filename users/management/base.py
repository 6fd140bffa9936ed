"""The base of the administration commands (``users``, ``audit``, ``certs``), and their file readers.

Bad input ends in ``CommandError`` with exit status 2 and a sentence on stderr, never a
traceback. Scripts depend on the commands' names, options and JSON; keep them stable.
"""

import getpass
import json
import logging
import os

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from certs.loading import MAX_FILE_BYTES

from ..models import NoSuchUser, User

logger = logging.getLogger(__name__)

BAD_INPUT = 2


def bad_input(message: str) -> CommandError:
    return CommandError(message, returncode=BAD_INPUT)


def validation_message(error: ValidationError) -> str:
    if hasattr(error, "message_dict"):
        return " ".join(
            f"{message}" if field == "__all__" else f"{field.replace('_', ' ').capitalize()}: {message}"
            for field, messages in error.message_dict.items()
            for message in messages
        )
    return " ".join(error.messages)


class AdminCommand(BaseCommand):
    """A command whose subcommands are methods named ``do_<area>_<action>``."""

    requires_system_checks = []
    # Errors whose message is already a sentence for the person at the terminal; a command
    # adds the errors of the use cases it calls.
    explained: tuple[type[Exception], ...] = (NoSuchUser,)

    @property
    def actor(self) -> str:
        try:
            who = getpass.getuser()
        except Exception:  # no login name in some containers
            who = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
        return f"command line ({who})"

    def handle(self, *args, **options):
        handler = getattr(self, "do_" + options["handler"].replace("-", "_"))
        try:
            return handler(**options)
        except self.explained as exc:
            raise bad_input(self.explain(exc)) from None
        except ValidationError as exc:
            raise bad_input(validation_message(exc)) from None
        except (CommandError, SystemExit, KeyboardInterrupt):
            raise
        except Exception as exc:
            # A last resort, so that even a case nobody foresaw ends in a sentence, not a traceback.
            logger.exception("manage.py %s failed", self.__module__.rsplit(".", 1)[-1])
            raise CommandError(
                f"The command failed unexpectedly ({type(exc).__name__}: {exc}). Details are in the log.",
                returncode=1,
            ) from None

    def explain(self, error: Exception) -> str:
        """The sentence for an explained error; by default, its own message."""
        return str(error)

    @staticmethod
    def user(username: str) -> User:
        """The named user; a name nobody has ends the command with one sentence."""
        return User.objects.named(username)

    def say(self, message: str) -> None:
        self.stdout.write(message)

    def warn(self, message: str) -> None:
        self.stderr.write("warning: " + message)

    def emit_json(self, data) -> None:
        self.stdout.write(json.dumps(data, indent=2, ensure_ascii=False))


def read_file(path: str, limit: int = MAX_FILE_BYTES) -> bytes:
    try:
        with open(path, "rb") as handle:
            # Read one byte past the limit: a device or pipe reports no size of its own.
            data = handle.read(limit + 1)
        if len(data) > limit:
            raise bad_input(f"{path}: the file is larger than {limit:,} bytes, which is the most accepted.")
        return data
    except FileNotFoundError:
        raise bad_input(f"{path}: no such file.") from None
    except IsADirectoryError:
        raise bad_input(f"{path}: is a directory, not a file.") from None
    except PermissionError:
        raise bad_input(f"{path}: permission denied.") from None
    except OSError as exc:
        raise bad_input(f"{path}: cannot be read ({exc.strerror or exc}).") from None


def read_password_file(path: str) -> str:
    """The first line of the file, without its line ending; it must not be empty."""
    raw = read_file(path, limit=64 * 1024)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_input(f"{path}: the password file is not UTF-8 text.") from None
    password = text.splitlines()[0] if text.splitlines() else ""
    if not password:
        raise bad_input(f"{path}: the password file is empty.")
    return password
