"""What accounts cost per API call: ``ListBackends`` through the app in-process (ASGI, no socket),
account-less (the baseline) against accounts on with a session, and with an API key instead.

    .venv/bin/python bench/accounts_overhead.py [--calls 3000] [--rounds 5]

Prints the median time per call of each and its ratio to the baseline measured in the same run.
With accounts on, every call re-reads its user from SQLite (so a role change or removal applies at
once); a key call also looks up and hashes the key.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from swarmkeeper.accounts.callers import account_user
from swarmkeeper.accounts.passwords import client_prehash
from swarmkeeper.app import create_app
from swarmkeeper.config import ServerConfig
from swarmkeeper.services import Services

Call = Callable[[], Awaitable[httpx.Response]]


@asynccontextmanager
async def client(data_dir: Path, accounts: bool) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, Call]]]:
    app = create_app(ServerConfig(data_dir=data_dir, require_accounts=accounts))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            yield http, await callers(http, app.state.services, accounts)


async def callers(http: httpx.AsyncClient, services: Services, accounts: bool) -> dict[str, Call]:
    if not accounts:
        session = (await http.post("/API/GetNewSession", json={})).json()["session_id"]
        return {"account-less session": lambda: http.post("/API/ListBackends", json={"session_id": session})}
    store = services.accounts
    await store.add_user("bench", client_prehash("bench", "bench password"), "admin")
    _, key = await store.create_key(account_user(await store.account("bench")), "bench")
    login = await http.post("/API/Login", json={"username": "bench", "password": "bench password"})
    token = login.cookies["swarm_token"]
    http.cookies.clear()
    opened = await http.post("/API/GetNewSession", json={}, headers={"Cookie": f"swarm_token={token}"})
    session = opened.json()["session_id"]
    return {"accounts: session": lambda: http.post("/API/ListBackends", json={"session_id": session}),
            "accounts: API key": lambda: http.post("/API/ListBackends", json={},
                                                   headers={"Authorization": f"Bearer {key}"})}


async def measure(call: Call, calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        response = await call()
        assert response.status_code == 200, response.text
    return (time.perf_counter() - started) / calls * 1e6


async def main(calls: int, rounds: int) -> None:
    samples: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as plain_dir, tempfile.TemporaryDirectory() as accounts_dir:
        async with client(Path(plain_dir), False) as (_, plain), client(Path(accounts_dir), True) as (_, with_acc):
            cases = {**plain, **with_acc}
            for case in cases.values():
                await measure(case, 50)  # warm up
            for _ in range(rounds):
                for name, case in cases.items():
                    samples.setdefault(name, []).append(await measure(case, calls))
    baseline = statistics.median(samples["account-less session"])
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"{name:<24} {median:8.1f} us/call   ratio {median / baseline:5.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.calls, arguments.rounds))
