"""Signed joblib artifacts: nothing is unpickled before its size, SHA-256 and HMAC check out.

Unpickling runs arbitrary code, so a model file is data we must prove we wrote. Each artifact
is signed with HMAC-SHA256 over its name, size and SHA-256 under a key from an injectable key
provider (the keyring in the app). The name is inside the signature, so swapping two genuine
files is refused too. The file is read into memory once, checked, and unpickled from those same
bytes: no window between the check and the load.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KeyProvider = Callable[[], bytes]

SUFFIX = ".joblib"
SUFFIXES = (SUFFIX, ".onnx")  # signed joblib pickles; signed ONNX graphs (models.onnx_path)
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
MIN_KEY_BYTES = 16


class ArtifactError(Exception):
    """An artifact that must not be loaded: missing, altered, unsigned or foreign."""


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    name: str
    size: int
    sha256: str
    signature: str  # hex HMAC-SHA256


def _message(name: str, size: int, sha256: str) -> bytes:
    return f"dalal-model-artifact\n{name}\n{size}\n{sha256}".encode()


class ArtifactStore:
    def __init__(self, directory: Path, key_provider: KeyProvider) -> None:
        self.directory = directory
        self._key_provider = key_provider

    def _key(self) -> bytes:
        key = self._key_provider()
        if len(key) < MIN_KEY_BYTES:
            raise ArtifactError("the model signing key is too short (need at least 16 bytes)")
        return key

    def _path(self, name: str) -> Path:
        if not _NAME.match(name) or not name.endswith(SUFFIXES) or name.startswith("."):
            raise ArtifactError(f"invalid artifact name {name!r}")
        return self.directory / name

    def sign(self, name: str, size: int, sha256: str) -> str:
        return hmac.new(self._key(), _message(name, size, sha256), hashlib.sha256).hexdigest()

    def save(self, obj: Any, name: str) -> ArtifactRef:
        """Dump ``obj`` with joblib, atomically, and return its signed reference."""
        import joblib  # type: ignore[import-untyped,unused-ignore]

        if not name.endswith(SUFFIX):
            raise ArtifactError(f"invalid artifact name {name!r}: a joblib dump ends in {SUFFIX}")
        buffer = io.BytesIO()
        joblib.dump(obj, buffer)
        return self.save_bytes(buffer.getvalue(), name)

    def save_bytes(self, data: bytes, name: str) -> ArtifactRef:
        """Write ``data`` atomically under ``name`` and return its signed reference."""
        path = self._path(name)
        if path.exists():
            raise ArtifactError(f"artifact {name} already exists; versions are immutable")
        digest = hashlib.sha256(data).hexdigest()
        # Signed before anything is written: a missing key must not leave an unsigned file
        # behind that blocks this name for good.
        signature = self.sign(name, len(data), digest)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=SUFFIX)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return ArtifactRef(name, len(data), digest, signature)

    def exists(self, name: str) -> bool:
        return self._path(name).exists()

    def discard(self, name: str) -> bool:
        """Remove an artifact no record points to (a failed registration); True if removed."""
        path = self._path(name)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def verified_bytes(self, ref: ArtifactRef) -> bytes:
        """The artifact's bytes, only if they match ``ref`` and ``ref`` carries our signature."""
        path = self._path(ref.name)
        expected = self.sign(ref.name, ref.size, ref.sha256)
        if not hmac.compare_digest(expected, ref.signature):
            raise ArtifactError(
                f"artifact {ref.name}: signature does not match this installation's model key "
                "(foreign or forged record); refusing to load"
            )
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise ArtifactError(f"artifact {ref.name} is missing from {self.directory}") from None
        if size != ref.size:
            raise ArtifactError(
                f"artifact {ref.name}: size {size} bytes, expected {ref.size}; refusing to load"
            )
        data = path.read_bytes()
        if not hmac.compare_digest(hashlib.sha256(data).hexdigest(), ref.sha256):
            raise ArtifactError(
                f"artifact {ref.name}: SHA-256 mismatch (file altered); refusing to load"
            )
        return data

    def load(self, ref: ArtifactRef) -> Any:
        if not ref.name.endswith(SUFFIX):
            raise ArtifactError(f"artifact {ref.name} is not a joblib dump; refusing to unpickle")
        data = self.verified_bytes(ref)
        import joblib  # type: ignore[import-untyped,unused-ignore]

        return joblib.load(io.BytesIO(data))
