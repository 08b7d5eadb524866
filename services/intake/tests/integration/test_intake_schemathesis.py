"""Schemathesis against intake's OpenAPI: no generated request gets a 5xx (issue 3 "Tests").

The app runs in-process (ASGI) with its lifespan on a loop in a helper thread; schemathesis
generates requests from ``/openapi.json`` for every operation, with a token that admits
every endpoint, and each is sent through an in-process httpx client. Examples are bounded
so that the run stays within about a minute.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from services.intake.main import create_app
from services.intake.settings import IntakeSettings

MAX_EXAMPLES = 100


class _AppThread:
    """Run an ASGI app's lifespan and an httpx client on an event loop in a thread."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.ready: Future[None] = Future()
        self.stop_event: asyncio.Event | None = None
        self.client: httpx.AsyncClient | None = None
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    async def _main(self) -> None:
        self.stop_event = asyncio.Event()
        async with self.app.router.lifespan_context(self.app):
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                self.client = client
                self.ready.set_result(None)
                await self.stop_event.wait()

    def __enter__(self) -> _AppThread:
        self.thread.start()
        self.main = asyncio.run_coroutine_threadsafe(self._main(), self.loop)
        self.ready.result(timeout=30)
        return self

    def request(self, **kwargs: Any) -> httpx.Response:
        assert self.client is not None
        return asyncio.run_coroutine_threadsafe(self.client.request(**kwargs), self.loop).result(
            timeout=60
        )

    def __exit__(self, *exc: object) -> None:
        assert self.stop_event is not None
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.main.result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def running(intake_settings: Callable[..., IntakeSettings]) -> Iterator[_AppThread]:
    with _AppThread(create_app(intake_settings())) as running_app:
        yield running_app


def test_no_generated_request_gets_a_5xx(running: _AppThread, token_for: Any) -> None:
    spec = running.request(method="GET", url="/openapi.json").json()
    schema = schemathesis.openapi.from_dict(spec)
    auth = token_for("admin", subject="schemathesis")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            kwargs = case.as_transport_kwargs(base_url="http://test")
            headers = {**(kwargs.get("headers") or {}), **auth}
            body = kwargs.get("json")
            content = kwargs.get("data")
            if body is not None:
                content = json.dumps(body).encode()
                headers.setdefault("content-type", "application/json")
            response = running.request(
                method=kwargs["method"],
                url=kwargs["url"],
                params=kwargs.get("params"),
                headers={k: str(v) for k, v in headers.items()},
                content=content,
            )
            if response.status_code >= 500:
                where = f"{kwargs['method']} {kwargs['url']}"
                failures.append(f"{where} -> {response.status_code}: {response.text[:300]}")
            assert response.status_code < 500

        check()
    assert operations >= 5
    assert not failures
