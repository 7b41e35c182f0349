"""Test-wide settings: Qt renders offscreen and nothing touches the user's real data or keyring.

Set at import, before any test module imports Qt or keyring, and inherited by every
subprocess a test starts (the headless server, the CLI).
"""

import os
import tempfile

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TZ", "Asia/Kolkata")

_sandbox = tempfile.mkdtemp(prefix="dalal-tests-")
for _var in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
    os.environ[_var] = os.path.join(_sandbox, _var.lower())
# No OS keyring in tests: code that needs one gets an in-memory backend from its fixture.
os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"

from collections.abc import Iterator  # noqa: E402  (after the environment is set)

import keyring  # noqa: E402
import pytest  # noqa: E402

from services.security.keyring_policy import trusted_keyring_backends  # noqa: E402
from tests.keyrings import MemoryKeyring  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _trust_memory_keyring() -> Iterator[None]:
    """The keyring policy only allows encrypted OS backends; tests trust their in-memory one."""
    with trusted_keyring_backends(MemoryKeyring):
        yield


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    """Install an empty in-memory keyring for one test, then restore the previous backend."""
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


@pytest.fixture(autouse=True)
def _ui_thread_gc(request: pytest.FixtureRequest) -> Iterator[None]:
    """A Qt test collects cycles on its UI thread only, as the desktop does
    (``widgets.ui_thread_gc``); what it leaves is collected there at its end."""
    if not {"qtbot", "qapp"} & set(request.fixturenames):
        yield
        return
    request.getfixturevalue("qapp")
    from widgets import ui_thread_gc

    ui_thread_gc.install()
    try:
        yield
    finally:
        ui_thread_gc.uninstall()
