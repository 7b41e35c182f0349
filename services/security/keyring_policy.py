"""Which keyring backends may hold the database key and broker credentials.

keyring silently falls back to whatever backend it finds. On a Linux box without a Secret
Service that can be keyrings.alt's PlaintextKeyring (values only base64-encoded in a file
any process of the user, or any backup, can read) or the fail backend. We refuse those and
say what to use instead.
"""

from __future__ import annotations

import keyring
from keyring.backend import KeyringBackend

from services.security.errors import InsecureKeyringError

SERVICE = "dalal-terminal"

_INSECURE = frozenset(
    {
        "keyrings.alt.file.PlaintextKeyring",
        "keyring.backends.fail.Keyring",
        "keyring.backends.null.Keyring",
    }
)

ADVICE = (
    "use the desktop's Secret Service (gnome-keyring or KWallet), macOS Keychain or Windows "
    "Credential Manager; on a headless machine use keyrings.cryptfile (CryptFileKeyring), or "
    "hand the database key to the terminal on a file descriptor (--key-fd) or as a systemd "
    "credential (LoadCredential=, read from $CREDENTIALS_DIRECTORY)"
)


def _name(backend: KeyringBackend) -> str:
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


def _chain(backend: KeyringBackend) -> list[KeyringBackend]:
    inner = getattr(backend, "backends", None)
    if _name(backend) == "keyring.backends.chainer.ChainerBackend" and inner is not None:
        return sorted(inner, key=lambda b: b.priority, reverse=True)
    return [backend]


def check_backend(backend: KeyringBackend) -> KeyringBackend:
    """Return ``backend`` if it keeps secrets encrypted, else raise ``InsecureKeyringError``.

    A chainer writes to the first of its backends that accepts a value, highest priority
    first, so it is refused when it is empty or when an insecure one comes first.
    """
    chain = _chain(backend)
    if not chain or _name(chain[0]) in _INSECURE:
        offender = _name(chain[0]) if chain else f"{_name(backend)} (no usable backend)"
        raise InsecureKeyringError(
            f"refusing keyring backend {offender}: it does not keep secrets encrypted; {ADVICE}"
        )
    return backend


def secure_keyring(backend: KeyringBackend | None = None) -> KeyringBackend:
    return check_backend(backend if backend is not None else keyring.get_keyring())
