"""One exception tree for everything archiver reports to a user.

    ArchiverError            exit 1   base; message is one line for the user
    ├── InputError           exit 2   not an archive, unsafe path, bad JSON or schema, unsupported
    ├── IntegrityError       exit 3   digest or size mismatch, truncated data
    ├── NotFound             exit 4   no such image, blob or file
    ├── PeerError            exit 5   registry, daemon or external tool failed
    └── Conflict             exit 6   the target exists, two inputs disagree

The CLI prints ``str(error)`` on one line and exits with ``error.exit_code``; a
traceback only with ``--debug``. Control characters in a message (a newline in a file's
name, say) are escaped, so one error is always one line.
"""

from __future__ import annotations


class ArchiverError(Exception):
    """Base of every error archiver reports to a user."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        message = one_line(message)
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def one_line(text: str) -> str:
    """``text`` with each control or other unprintable character escaped as Python would
    (``\\n``, ``\\x1b``): names quoted in messages cannot split or recolour a line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class InputError(ArchiverError):
    """The input is not something we read: malformed, unsafe or unsupported."""

    exit_code = 2


class IntegrityError(ArchiverError):
    """Bytes do not match what their descriptor promises."""

    exit_code = 3

    def __init__(self, origin: str, blob: str, detail: str) -> None:
        super().__init__(f"{origin}: blob {blob}: {detail}")
        self.origin = origin
        self.blob = blob
        self.detail = detail


class NotFound(ArchiverError):
    """An image, blob or file that was asked for is not there."""

    exit_code = 4


class PeerError(ArchiverError):
    """A daemon, registry or external tool failed."""

    exit_code = 5


class Conflict(ArchiverError):
    """The request contradicts what exists (target present, ambiguous name)."""

    exit_code = 6
