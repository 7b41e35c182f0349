import pytest

from tests.risk.support import World, make_world


@pytest.fixture
def world() -> World:
    return make_world()
