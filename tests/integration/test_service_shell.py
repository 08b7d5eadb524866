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
