"""shared.periodic.PeriodicWorker: rounds go on after a failure; stop ends the loop."""

from __future__ import annotations

import asyncio

from shared.periodic import PeriodicWorker


class _Flaky(PeriodicWorker):
    name = "test-flaky"
    failure_event = "test.round_failed"

    def __init__(self) -> None:
        super().__init__()
        self.rounds = 0
        self.reported: list[int] = []

    @property
    def interval_seconds(self) -> float:
        return 0.01

    async def tick(self) -> int:
        self.rounds += 1
        if self.rounds == 1:
            raise RuntimeError("first round fails")
        return self.rounds

    def report(self, result: int) -> None:
        self.reported.append(result)


async def test_a_failed_round_is_followed_by_more_and_stop_ends_the_loop() -> None:
    worker = _Flaky()
    worker.start()
    for _ in range(500):
        if len(worker.reported) >= 3:
            break
        await asyncio.sleep(0.01)
    await worker.stop()
    assert worker.reported[:3] == [2, 3, 4]  # round 1 raised and was not reported
    assert worker._task is not None
    assert worker._task.done()
    rounds = worker.rounds
    await asyncio.sleep(0.05)
    assert worker.rounds == rounds  # no round after stop


async def test_stop_cancels_a_round_that_overruns_the_timeout() -> None:
    class _Stuck(_Flaky):
        stop_timeout_seconds = 0.05

        async def tick(self) -> int:
            await asyncio.sleep(3600)
            return 0

    worker = _Stuck()
    worker.start()
    await asyncio.sleep(0.02)
    await worker.stop()
    await asyncio.sleep(0)
    assert worker._task is not None
    assert worker._task.done()
