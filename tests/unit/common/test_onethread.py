"""The one-thread wrapper: calls run in order, on one thread that is not the event loop's."""

from __future__ import annotations

import asyncio
import threading

import pytest

from trustspace.onethread import OneThread

pytestmark = pytest.mark.unit


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[int, str]] = []
        self.closed = False

    def add(self, i: int) -> int:
        self.seen.append((i, threading.current_thread().name))
        return i * 2

    def close(self) -> None:
        self.closed = True


def test_calls_run_in_order_on_one_worker_and_return_their_values() -> None:
    one = OneThread(Recorder(), "test-one")

    async def main() -> list[int]:
        return await asyncio.gather(*(one.call(lambda r, i=i: r.add(i)) for i in range(20)))

    assert asyncio.run(main()) == [i * 2 for i in range(20)]
    assert [i for i, _ in one.obj.seen] == list(range(20))
    threads = {name for _, name in one.obj.seen}
    assert len(threads) == 1 and threads.pop().startswith("test-one")
    one.close()
    assert one.obj.closed


def test_an_exception_reaches_the_caller_and_the_worker_goes_on() -> None:
    one = OneThread(Recorder(), "test-err")

    def boom(_: Recorder) -> None:
        raise KeyError("gone")

    async def main() -> int:
        with pytest.raises(KeyError):
            await one.call(boom)
        return await one.call(lambda r: r.add(1))

    assert asyncio.run(main()) == 2
    one.shutdown()
    assert not one.obj.closed, "shutdown leaves the object open"
