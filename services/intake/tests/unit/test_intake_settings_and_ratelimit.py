from __future__ import annotations

import pytest

from services.intake.ratelimit import TokenBuckets
from services.intake.settings import IntakeSettings


def test_platform_cfp_variables_reach_intake(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CFP_JWT_SECRET", "j" * 40)
    monkeypatch.setenv("CFP_VAULT_KEYS", "k9:" + "A" * 43 + "=")
    monkeypatch.setenv("INTAKE_RATE_LIMIT_PER_SECOND", "3")
    s = IntakeSettings()
    assert s.jwt_secret.get_secret_value() == "j" * 40
    assert s.vault_keys.get_secret_value().startswith("k9:")
    assert s.rate_limit_per_second == 3


def test_production_refuses_dev_secrets_via_cfp_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CFP_ENVIRONMENT", "production")
    with pytest.raises(ValueError, match="development secrets"):
        IntakeSettings()


def test_token_bucket_burst_refill_and_retry_after() -> None:
    now = [0.0]
    buckets = TokenBuckets(rate_per_second=2, burst=3, clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)
    assert buckets.take("b") == 0.0  # per client
    now[0] += 0.5
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0
    now[0] += 100
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]  # capped at burst


def test_disabled_limiter_admits_everything() -> None:
    buckets = TokenBuckets(rate_per_second=0, burst=1)
    assert all(buckets.take("a") == 0.0 for _ in range(1000))
