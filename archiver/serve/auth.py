"""Basic auth from an htpasswd file as the distribution registry reads it: one
``user:bcrypt-hash`` per line (``$2y$``, ``$2b$``, ``$2a$``); anything else is refused at
start in one line naming the file and the line."""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading

import bcrypt

from archiver.blobs.regular_file import read_text_file
from archiver.errors import InputError

MAX_FILE = 1024 * 1024
_BCRYPT = ("$2y$", "$2b$", "$2a$")


class Htpasswd:
    """Users and their bcrypt hashes; credentials once proved are remembered (by a hash of
    them), so bcrypt's cost is paid once per user, not per blob."""

    def __init__(self, users: dict[str, bytes]) -> None:
        self._users = users
        self._proved: set[bytes] = set()
        self._lock = threading.Lock()

    @classmethod
    def read(cls, path: str) -> Htpasswd:
        text = read_text_file(path, MAX_FILE, "htpasswd file")
        users: dict[str, bytes] = {}
        for number, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            user, sep, hashed = line.partition(":")
            if not sep or not user or not hashed.startswith(_BCRYPT):
                raise InputError(
                    f"{path}: line {number}: not user:bcrypt-hash (only bcrypt is read, "
                    f"as by the distribution registry: htpasswd -B)"
                )
            users[user] = hashed.encode()
        if not users:
            raise InputError(f"{path}: no users in the htpasswd file")
        return cls(users)

    def user(self, authorization: str | None) -> str | None:
        """The user an ``Authorization: Basic`` header proves, or None."""
        if not authorization or not authorization.startswith("Basic "):
            return None
        try:
            pair = base64.b64decode(authorization[6:], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, sep, password = pair.partition(":")
        hashed = self._users.get(user)
        if not sep or hashed is None:
            return None
        token = hashlib.sha256(pair.encode() + b"\0" + hashed).digest()
        with self._lock:
            if token in self._proved:
                return user
        try:
            ok = bcrypt.checkpw(password.encode(), hashed.replace(b"$2y$", b"$2b$", 1))
        except ValueError:
            return None
        if ok:
            with self._lock:
                self._proved.add(token)
        return user if ok else None
