"""swarmkeeper as an autoscaled worker: AdminTakeControl keeps it up, --require_control_within ends it
when the pings stop, --no_persist writes nothing."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from swarmkeeper.control import ControlWatch
from tests.servers import ServerProcess


async def test_a_watch_stops_only_once_no_ping_came_in_time() -> None:
    now = [0.0]
    stops: list[float] = []
    watch = ControlWatch(limit=60.0, clock=lambda: now[0])
    assert watch.overdue() == -60.0
    now[0] = 50.0
    watch.ping()
    now[0] = 100.0
    assert watch.overdue() == -10.0
    now[0] = 110.0
    await watch.run(lambda: stops.append(now[0]), step=0.01)
    assert stops == [110.0]
    await ControlWatch(limit=0).run(lambda: stops.append(-1.0))  # 0: never
    assert stops == [110.0]


async def test_a_worker_lives_while_pinged_and_ends_itself_after(tmp_path: Path) -> None:
    data = tmp_path / "worker"
    worker = ServerProcess(data, "--require_control_within", "0.03", "--no_persist", "true").start()  # 1.8 s
    try:
        async with worker.client() as http:
            session = (await http.post("/API/GetNewSession", json={})).json()["session_id"]
            assert "automated_control" in (await http.post("/API/GetNewSession", json={})).json()["permissions"]
            until = time.monotonic() + 4.0
            while time.monotonic() < until:  # twice the limit, pinged: still up
                answer = await http.post("/API/AdminTakeControl", json={"session_id": session})
                assert answer.json() == {"success": True}
                await asyncio.sleep(0.3)
        assert worker.process is not None and worker.process.poll() is None
        started = time.monotonic()
        code = await asyncio.to_thread(worker.process.wait, 30)
        assert code == 0 and time.monotonic() - started < 20
        assert "No AdminTakeControl came within 0.03 minutes" in worker.output()
        assert sorted(path.name for path in data.iterdir()) == ["swarmkeeper.lock"]  # --no_persist: nothing else
    finally:
        worker.stop()
