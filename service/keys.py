"""The pseudonym key: the HMAC key that turns patient and encounter references into
pseudonyms for the audit store and the fairness audit.

It must be stable across restarts (otherwise ReportOutcome by encounter reference could not
find earlier records) and secret (a pseudonym is only as good as its key). Precedence:
``settings.pseudonym_key`` when set, else ``<data_dir>/pseudonym.key``, created once with
32 random bytes and mode 0600, then reused.
"""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
from pathlib import Path

from service.settings import Settings

logger = logging.getLogger(__name__)

KEY_FILE_NAME = "pseudonym.key"
KEY_BYTES = 32


class PseudonymKeyError(RuntimeError):
    """The key file exists but cannot be used (wrong size, unreadable, or not private to the
    service's user)."""


def load_pseudonym_key(settings: Settings) -> bytes:
    if settings.pseudonym_key is not None:
        # Settings refuses keys shorter than MIN_SECRET_CHARS.
        return settings.pseudonym_key.get_secret_value().encode()
    return load_or_create_key_file(settings.data_dir / KEY_FILE_NAME)


def load_or_create_key_file(path: Path) -> bytes:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.exists():
        return _read_key_file(path)
    # Written whole to a private temporary file, then linked into place: of two processes
    # starting at once exactly one key wins, and nobody ever reads a half-written key.
    fd, temporary = tempfile.mkstemp(prefix=".pseudonym-", dir=path.parent)
    try:
        key = secrets.token_bytes(KEY_BYTES)
        with os.fdopen(fd, "wb") as handle:  # mkstemp creates it 0600
            handle.write(key)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return _read_key_file(path)
        _fsync_directory(path.parent)
    finally:
        os.unlink(temporary)
    logger.info("created a new pseudonym key file in the data directory")
    return key


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_key_file(path: Path) -> bytes:
    # Refused, not warned about: a key others can read makes every pseudonym reversible by
    # hashing candidate record numbers, and a key file another user planted (in a data dir
    # that was writable to them) would be theirs to read.
    info = path.stat()
    if info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise PseudonymKeyError(
            "pseudonym key file must belong to the service's user with mode 0600"
        )
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise PseudonymKeyError(f"pseudonym key file must hold exactly {KEY_BYTES} bytes")
    return key
