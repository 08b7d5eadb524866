"""A SIGTERM in the middle of a burst loses nothing: every 201 has exactly one event
(issue 3 §5).

Intake runs as a real uvicorn process on a free port; a burst of concurrent complaints
is interrupted by SIGTERM. uvicorn stops accepting, finishes in-flight requests (whose
group-commit batches are committed before they are answered) and exits.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
from intake_samples import complaint_body
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.intake import tables
from shared.devinfra import REPO_ROOT

BURST = 600


async def test_sigterm_during_a_burst_loses_nothing(
    platform_env: dict[str, str], token_for: Any, db: AsyncEngine, tmp_path: Path
) -> None:
    # The test holds the listening socket and hands it to uvicorn: no other process can take
    # the port in between (the machine runs many servers at once).
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(2048)
    port = listener.getsockname()[1]
    log_path = tmp_path / "intake.log"
    env = {**os.environ, **platform_env, "INTAKE_RATE_LIMIT_PER_SECOND": "0"}
    with log_path.open("wb") as log_file:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "uvicorn", "--factory", "services.intake.main:create_app",
            "--fd", str(listener.fileno()), "--no-access-log",
            "--timeout-graceful-shutdown", "20",
            cwd=REPO_ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
            pass_fds=(listener.fileno(),),
        )  # fmt: skip
    listener.close()
    subject = f"burst-{uuid.uuid4().hex[:8]}"
    headers = token_for("intake_client", subject=subject)
    accepted: list[str] = []
    refused = 0
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            for _ in range(150):
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(log_path.read_text()[-3000:])
            answered = asyncio.Event()
            done = 0

            async def one(i: int, sem: asyncio.Semaphore) -> None:
                nonlocal done, refused
                async with sem:
                    body = complaint_body(
                        customer={"customer_number": f"{subject}-{i}"},
                        description=f"第{i}条：网银登录后闪退",
                    )
                    try:
                        r = await client.post("/v1/complaints", json=body, headers=headers)
                    except httpx.TransportError:
                        refused += 1
                        return
                    if r.status_code == 201:
                        accepted.append(r.json()["id"])
                    else:
                        assert r.status_code in (503,), r.text
                        refused += 1
                    done += 1
                    if done == BURST // 4:
                        answered.set()

            sem = asyncio.Semaphore(32)
            burst = asyncio.gather(*(one(i, sem) for i in range(BURST)))
            await answered.wait()
            proc.send_signal(signal.SIGTERM)
            await burst
        # uvicorn re-raises the signal after its graceful shutdown: exit status -SIGTERM
        code = await asyncio.wait_for(proc.wait(), 60)
        log_text = log_path.read_text()
        assert code in (0, -signal.SIGTERM), log_text[-3000:]
        assert "Application shutdown complete" in log_text
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

    assert len(accepted) >= BURST // 4
    assert len(accepted) < BURST, "SIGTERM came too late to interrupt the burst"
    s, o = tables.submission, tables.outbox
    async with db.connect() as conn:
        recorded = set(
            (await conn.execute(select(s.c.id).where(s.c.created_by == subject))).scalars()
        )
        per_event = dict(
            (
                await conn.execute(
                    select(o.c.key, func.count())
                    .where(o.c.key.in_(recorded), o.c.topic == "complaints.received")
                    .group_by(o.c.key)
                )
            ).all()
        )
    assert set(accepted) <= recorded
    assert all(per_event.get(cid) == 1 for cid in accepted)
    # nothing recorded without its event either
    assert set(per_event) == recorded
    assert all(n == 1 for n in per_event.values())
