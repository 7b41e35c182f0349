"""Where the database key comes from.

* ``KeyringKeySource`` (default): a random 256-bit key made at first run and kept in the OS
  keyring, so the trader types nothing and the file alone is useless.
* ``PassphraseKeySource``: the key is Argon2id(passphrase, salt) with at least 64 MiB of memory,
  so a copied file costs an attacker 64 MiB and tens of milliseconds per guess. The salt and
  cost parameters sit in ``vault.json`` beside the database; they are not secret.
* ``FileDescriptorKeySource`` / ``CredentialFileKeySource``: a key handed to a headless process
  on an inherited pipe or as a systemd credential. Never an environment variable: the
  environment is readable through /proc by the user's other processes and leaks into crash
  reports and child processes.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from argon2.low_level import Type, hash_secret_raw
from keyring.backend import KeyringBackend

from services.security.errors import KeyUnavailableError
from services.security.keyring_policy import SERVICE, secure_keyring
from services.security.lockout import write_json_atomic
from services.storage.paths import ProfilePaths
from services.storage.sqlcipher import KEY_BYTES

MODE_KEYRING = "keyring"
MODE_PASSPHRASE = "passphrase"  # noqa: S105 - a mode name, not a secret
MODE_HANDED = "handed"
MIN_MEMORY_KIB = 64 * 1024
HEADER_VERSION = 1


@dataclass(frozen=True, slots=True)
class Argon2Params:
    time_cost: int = 3
    memory_cost_kib: int = MIN_MEMORY_KIB
    parallelism: int = 4

    def __post_init__(self) -> None:
        if self.memory_cost_kib < MIN_MEMORY_KIB:
            raise ValueError("Argon2 memory must be at least 64 MiB")
        if self.time_cost < 1 or self.parallelism < 1:
            raise ValueError("Argon2 time_cost and parallelism must be positive")


def derive_key(passphrase: str, salt: bytes, params: Argon2Params) -> bytes:
    if not passphrase:
        raise ValueError("empty passphrase")
    return hash_secret_raw(
        secret=passphrase.encode("utf-8"),
        salt=salt,
        time_cost=params.time_cost,
        memory_cost=params.memory_cost_kib,
        parallelism=params.parallelism,
        hash_len=KEY_BYTES,
        type=Type.ID,
    )


@dataclass(frozen=True, slots=True)
class VaultHeader:
    """The non-secret ``vault.json``: how this profile's key is obtained."""

    mode: str
    salt_hex: str | None = None
    argon2: Argon2Params | None = None

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {"version": HEADER_VERSION, "mode": self.mode}
        if self.argon2 is not None and self.salt_hex is not None:
            data["kdf"] = {"algorithm": "argon2id", "salt": self.salt_hex, **asdict(self.argon2)}
        return data

    @classmethod
    def load(cls, path: Path) -> VaultHeader | None:
        try:
            raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        kdf = raw.get("kdf")
        if kdf is None:
            return cls(mode=str(raw["mode"]))
        params = Argon2Params(
            time_cost=int(kdf["time_cost"]),
            memory_cost_kib=int(kdf["memory_cost_kib"]),
            parallelism=int(kdf["parallelism"]),
        )
        return cls(mode=str(raw["mode"]), salt_hex=str(kdf["salt"]), argon2=params)

    def save(self, path: Path) -> None:
        write_json_atomic(path, self.to_json())


class KeySource(Protocol):
    mode: str

    def key(self, paths: ProfilePaths, *, create: bool) -> bytes:
        """Return the 32-byte key; ``create`` is true when the database does not exist yet."""
        ...


def keyring_username(profile: str) -> str:
    return f"db-key:{profile}"


def model_signing_username(profile: str) -> str:
    """The keyring entry of the key that signs a profile's model artifacts (HMAC)."""
    return f"model-signing:{profile}"


class KeyringKeySource:
    mode = MODE_KEYRING

    def __init__(self, backend: KeyringBackend | None = None) -> None:
        self._backend = backend

    @property
    def backend(self) -> KeyringBackend:
        return secure_keyring(self._backend)

    def key(self, paths: ProfilePaths, *, create: bool) -> bytes:
        backend = self.backend
        stored = backend.get_password(SERVICE, keyring_username(paths.profile))
        if stored is None:
            if not create:
                raise KeyUnavailableError(
                    f"no database key for profile {paths.profile!r} in the keyring "
                    f"({type(backend).__name__}); if this profile uses a passphrase, unlock "
                    "with it, or restore the keyring from its backup"
                )
            key = secrets.token_bytes(KEY_BYTES)
            self.store(paths, key)
            VaultHeader(MODE_KEYRING).save(paths.header)
            return key
        try:
            key = bytes.fromhex(stored)
        except ValueError:
            key = b""
        if len(key) != KEY_BYTES:
            raise KeyUnavailableError("the keyring entry for the database key is malformed")
        return key

    def store(self, paths: ProfilePaths, key: bytes) -> None:
        self.backend.set_password(SERVICE, keyring_username(paths.profile), key.hex())

    def delete(self, paths: ProfilePaths) -> bool:
        backend = secure_keyring(self._backend)
        if backend.get_password(SERVICE, keyring_username(paths.profile)) is None:
            return False
        backend.delete_password(SERVICE, keyring_username(paths.profile))
        return True


class PassphraseKeySource:
    mode = MODE_PASSPHRASE

    def __init__(
        self, passphrase: str | Callable[[], str], params: Argon2Params | None = None
    ) -> None:
        self._passphrase = passphrase
        self._params = params or Argon2Params()

    def _secret(self) -> str:
        return self._passphrase() if callable(self._passphrase) else self._passphrase

    def new_header(self) -> VaultHeader:
        return VaultHeader(MODE_PASSPHRASE, secrets.token_bytes(16).hex(), self._params)

    def key_for(self, header: VaultHeader) -> bytes:
        if header.salt_hex is None or header.argon2 is None:
            raise KeyUnavailableError("vault.json has no passphrase parameters")
        return derive_key(self._secret(), bytes.fromhex(header.salt_hex), header.argon2)

    def key(self, paths: ProfilePaths, *, create: bool) -> bytes:
        header = VaultHeader.load(paths.header)
        if create:
            header = self.new_header()
            # The header goes to disk before the database exists: a database whose salt is
            # lost could never be opened again.
            header.save(paths.header)
        elif header is None or header.mode != MODE_PASSPHRASE:
            raise KeyUnavailableError(
                f"profile {paths.profile!r} is not in passphrase mode (see vault.json)"
            )
        return self.key_for(header)


def _parse_handed_key(raw: bytes) -> bytes:
    text = raw.strip()
    if len(raw) == KEY_BYTES:
        return raw
    try:
        key = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise KeyUnavailableError("a handed key must be 32 raw bytes or 64 hexadecimal characters")
    return key


class FileDescriptorKeySource:
    """Reads the key once from an inherited descriptor (``dalal ... --key-fd 3 3<keyfile``)."""

    mode = MODE_HANDED

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._key: bytes | None = None

    def key(self, paths: ProfilePaths, *, create: bool) -> bytes:
        if self._key is None:
            chunks = []
            try:
                while chunk := os.read(self._fd, 4096):
                    chunks.append(chunk)
                    if sum(map(len, chunks)) > 4096:
                        raise KeyUnavailableError("key descriptor carries too much data")
                os.close(self._fd)
            except OSError as e:
                raise KeyUnavailableError(
                    f"cannot read the key from descriptor {self._fd}: {e.strerror or e}"
                ) from None
            self._key = _parse_handed_key(b"".join(chunks))
        if create:
            VaultHeader(MODE_HANDED).save(paths.header)
        return self._key


class CredentialFileKeySource:
    """Reads a systemd credential (``LoadCredentialEncrypted=dalal-db-key:...``).

    ``$CREDENTIALS_DIRECTORY`` holds a path to a private, memory-backed directory that systemd
    sets up for the unit, not the key itself.
    """

    mode = MODE_HANDED

    def __init__(self, name: str = "dalal-db-key", directory: Path | None = None) -> None:
        self._name = name
        self._directory = directory

    def read_text(self) -> str:
        """The credential as text: a passphrase-mode profile's passphrase."""
        text = self._read().decode("utf-8", errors="replace").rstrip("\r\n")
        if not text:
            raise KeyUnavailableError(f"credential {self._name!r} is empty")
        return text

    def _read(self) -> bytes:
        directory = self._directory
        if directory is None:
            env = os.environ.get("CREDENTIALS_DIRECTORY")
            if not env:
                raise KeyUnavailableError(
                    "$CREDENTIALS_DIRECTORY is not set: run under systemd with LoadCredential="
                )
            directory = Path(env)
        try:
            return (directory / self._name).read_bytes()
        except OSError:
            raise KeyUnavailableError(f"cannot read credential {self._name!r}") from None

    def key(self, paths: ProfilePaths, *, create: bool) -> bytes:
        raw = self._read()
        if create:
            VaultHeader(MODE_HANDED).save(paths.header)
        return _parse_handed_key(raw)
