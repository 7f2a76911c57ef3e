"""The servers' garbage-collector settings (trustspace.gctuning)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from trustspace.gctuning import THRESHOLDS, settle_heap


@pytest.fixture
def restored_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


@pytest.mark.usefixtures("restored_gc")
def test_settle_heap_freezes_the_startup_heap_and_raises_thresholds() -> None:
    gc.unfreeze()
    settle_heap()
    assert gc.get_threshold() == THRESHOLDS
    assert gc.get_freeze_count() > 1000  # the imported modules' objects, at the least


@pytest.mark.usefixtures("restored_gc")
def test_cycles_made_after_settling_are_still_collected() -> None:
    settle_heap()

    class Node:
        other: object = None

    a, b = Node(), Node()
    a.other, b.other = b, a
    ref = weakref.ref(a)
    del a, b
    gc.collect()
    assert ref() is None
