"""The service shell: body limits, problem details for bad JSON and bad tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from httpx import ASGITransport, AsyncClient

from services.intake.main import create_app
from services.intake.settings import IntakeSettings


@pytest.fixture
async def intake(platform_env: dict[str, str]) -> AsyncIterator[AsyncClient]:
    settings = IntakeSettings(
        database_url=platform_env["DATABASE_URL"],
        kafka_bootstrap_servers=platform_env["KAFKA_BOOTSTRAP_SERVERS"],
        kafka_topic_prefix=platform_env["KAFKA_TOPIC_PREFIX"],
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client:
            yield client


async def test_oversized_chunked_body_gets_413(intake: AsyncClient, token_for) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"description": "'
        for _ in range(40):
            yield b"x" * 50_000
        yield b'"}'

    r = await intake.post(
        "/v1/complaints",
        content=chunks(),
        headers={**token_for("intake_client"), "content-type": "application/json"},
    )
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "payload_too_large"


async def test_body_that_is_not_json_is_named_as_such(intake: AsyncClient, token_for) -> None:
    r = await intake.post(
        "/v1/complaints",
        content=b"{not json",
        headers={**token_for("intake_client"), "content-type": "application/json"},
    )
    assert r.status_code == 422
    assert r.json()["detail"] == "the request body is not valid JSON"


async def test_garbage_token_gets_a_plain_401(intake: AsyncClient) -> None:
    r = await intake.get(
        "/v1/complaints/8f8e2a44-3c3b-4a39-9a5e-2f6f7f2b9d11",
        headers={"Authorization": b"Bearer \xb7\xb7.e30.x"},
    )
    assert r.status_code == 401
    assert r.json()["detail"] == "invalid token"
    assert r.headers["www-authenticate"] == "Bearer"


async def test_api_docs_load_nothing_from_outside(intake: AsyncClient) -> None:
    """Swagger UI works on a bank network without internet: every asset comes from us."""
    import re

    page = await intake.get("/docs")
    assert page.status_code == 200
    links = re.findall(r"""(?:src|href)=["']([^"']+)["']|url: ?["']([^"']+)["']""", page.text)
    urls = [a or b for a, b in links]
    assert "/openapi.json" in urls
    assert not [u for u in urls if "://" in u or u.startswith("//")], urls
    for url in urls:
        assert (await intake.get(url)).status_code == 200, url
    assert "cdn" not in page.text.lower()


async def test_a_service_middleware_runs_inside_the_platform_ones(
    platform_env: dict[str, str],
) -> None:
    from starlette.middleware import Middleware

    from shared.app import ServiceSpec, create_service_app
    from shared.config import PlatformSettings
    from shared.metrics import HTTP_REQUEST_DURATION

    reached: list[str] = []

    class Probe:
        def __init__(self, app, answer: bytes) -> None:
            self.app, self.answer = app, answer

        async def __call__(self, scope, receive, send) -> None:
            if scope["type"] != "http" or scope["path"] != "/probe":
                await self.app(scope, receive, send)
                return
            reached.append(scope["method"])
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": self.answer})

    spec = ServiceSpec(
        name="shellprobe",
        title="Probe",
        description="",
        max_body_bytes=100,
        middleware=[Middleware(Probe, answer=b"probed")],
    )
    app = create_service_app(spec, PlatformSettings(database_url=platform_env["DATABASE_URL"]))
    samples = ("unmatched", "GET", "200")
    before = HTTP_REQUEST_DURATION.labels(*samples)._sum.get()
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client:
        r = await client.get("/probe", headers={"X-Correlation-Id": "probe-1"})
        assert (r.status_code, r.text) == (200, "probed")
        assert r.headers["x-correlation-id"] == "probe-1"  # observability wraps it
        r = await client.post("/probe", content=b"x" * 101)
        assert r.status_code == 413  # the body limit stands before it
        r = await client.get("/healthz")  # other requests pass through it
        assert r.json() == {"status": "ok", "service": "shellprobe"}
    assert reached == ["GET"]
    assert HTTP_REQUEST_DURATION.labels(*samples)._sum.get() > before
