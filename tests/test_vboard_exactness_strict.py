"""The firmware exactness suite (tests/test_vboard_exactness.py) once more with the virtual board in strict
mode (a native memory hook on all memory): strict mode is the reference the fast mode's timing is checked
against, so it must compute exactly what the TFLite reference interpreter computes, on the same target
(NUCLEO-L4R5ZI), for every case, variant, float ABI and weight placement of the suite.

Every test function of that module is collected here again (same parameters, same checks); a module
fixture switches VirtualBackend to strict mode and gives this module its own boards.
"""

from __future__ import annotations

import pytest

import tests.test_vboard_exactness as base
from measure_agent.backends import VirtualBackend
from tests.test_vboard_exactness import *  # noqa: F401,F403  (the test functions, collected here too)


@pytest.fixture(scope="module", autouse=True)
def _strict_boards():
    saved = dict(base._boards)
    base._boards.clear()
    VirtualBackend.strict = True
    try:
        yield
    finally:
        VirtualBackend.strict = False
        for backend, _ in base._boards.values():
            backend.close()
        base._boards.clear()
        base._boards.update(saved)


def test_boards_are_strict():
    backend, _ = base.board("simd", "hard")
    assert backend.strict
    backend.firmware  # noqa: B018  (the backend exists; its VirtualBoard is made with strict=True)
