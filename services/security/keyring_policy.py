"""Which keyring backends may hold the database key, the model-signing key and broker credentials.

keyring silently falls back to whatever backend it finds. On a Linux box without a Secret
Service that can be one of keyrings.alt's plaintext backends (values only base64-encoded in a
file any process of the user, or any backup, can read), the fail backend, or some third-party
backend we know nothing about. A deny-list of the bad ones always lags behind the packages a
user can install, so this is an allow-list: only backends known to keep secrets encrypted at
rest are used, everything else is refused with advice on what to use instead.

Tests need an in-memory backend. They trust its exact class with ``trusted_keyring_backends``,
an explicit call in test code; there is deliberately no environment variable or setting for
it, because production could set one by accident.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import keyring
from keyring.backend import KeyringBackend

from services.security.errors import InsecureKeyringError

SERVICE = "dalal-terminal"

CHAINER = "keyring.backends.chainer.ChainerBackend"

# Matched on the exact class (module and qualified name), so a subclass that changes how values
# are stored is not let through on its parent's reputation.
ENCRYPTED_BACKENDS = frozenset(
    {
        "keyring.backends.SecretService.Keyring",
        "keyring.backends.libsecret.Keyring",
        "keyring.backends.macOS.Keyring",
        "keyring.backends.Windows.WinVaultKeyring",
        "keyring.backends.kwallet.DBusKeyring",
        "keyrings.cryptfile.cryptfile.CryptFileKeyring",
    }
)

ADVICE = (
    "use the desktop's Secret Service (gnome-keyring or KWallet), macOS Keychain or Windows "
    "Credential Manager; on a headless machine use keyrings.cryptfile (CryptFileKeyring), or "
    "hand the database key to the terminal on a file descriptor (--key-fd) or as a systemd "
    "credential (LoadCredential=, read from $CREDENTIALS_DIRECTORY)"
)

_trusted: frozenset[type[KeyringBackend]] = frozenset()


@contextmanager
def trusted_keyring_backends(*classes: type[KeyringBackend]) -> Iterator[None]:
    """Test hook: inside the block, exactly ``classes`` are trusted besides the allow-list.

    Replaces (not extends) the trusted set, so a test can also check that a backend is refused
    without the hook; the previous set is restored on exit.
    """
    global _trusted
    previous = _trusted
    _trusted = frozenset(classes)
    try:
        yield
    finally:
        _trusted = previous


def backend_name(backend: KeyringBackend) -> str:
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


def _allowed(backend: KeyringBackend) -> bool:
    return type(backend) in _trusted or backend_name(backend) in ENCRYPTED_BACKENDS


def _refuse(offender: str) -> InsecureKeyringError:
    return InsecureKeyringError(
        f"refusing keyring backend {offender}: it is not known to keep secrets encrypted; "
        f"{ADVICE}"
    )


def check_backend(backend: KeyringBackend) -> KeyringBackend:
    """Return ``backend`` if it keeps secrets encrypted, else raise ``InsecureKeyringError``.

    A chainer may read from or write to any of its backends, so it is accepted only when it
    chains at least one backend and every one of them is allowed.
    """
    if backend_name(backend) == CHAINER:
        chain: list[KeyringBackend] = list(getattr(backend, "backends", None) or [])
        if not chain:
            raise _refuse(f"{CHAINER} (no usable backend)")
        for inner in chain:
            if not _allowed(inner):
                raise _refuse(f"{backend_name(inner)} (chained by {CHAINER})")
        return backend
    if not _allowed(backend):
        raise _refuse(backend_name(backend))
    return backend


def secure_keyring(backend: KeyringBackend | None = None) -> KeyringBackend:
    return check_backend(backend if backend is not None else keyring.get_keyring())
