"""Platform settings: every service reads the CFP_* values, production refuses dev secrets."""

from __future__ import annotations

import pytest

from services.analytics.settings import AnalyticsSettings
from services.followup.settings import FollowupSettings
from services.intake.settings import IntakeSettings
from services.routing.settings import RoutingSettings
from services.tracking.settings import TrackingSettings
from shared.config import PlatformSettings

ALL = [
    PlatformSettings,
    IntakeSettings,
    RoutingSettings,
    TrackingSettings,
    FollowupSettings,
    AnalyticsSettings,
]


@pytest.mark.parametrize("cls", ALL)
def test_every_service_reads_the_platform_variables(
    cls: type[PlatformSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CFP_JWT_SECRET", "s" * 40)
    monkeypatch.setenv("CFP_TIMEZONE", "Asia/Hong_Kong")
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://u:p@db:5432/x")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    s = cls()
    assert s.jwt_secret.get_secret_value() == "s" * 40
    assert s.timezone == "Asia/Hong_Kong"
    assert s.database_url == "postgresql+asyncpg://u:p@db:5432/x"
    assert s.kafka_bootstrap_servers == "kafka:9092"


@pytest.mark.parametrize("cls", ALL)
def test_production_refuses_development_secrets(
    cls: type[PlatformSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CFP_ENVIRONMENT", "production")
    with pytest.raises(ValueError, match="CFP_JWT_SECRET"):
        cls()


def test_bare_names_do_not_configure_the_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMEZONE", "UTC")
    monkeypatch.setenv("ENVIRONMENT", "staging")
    s = TrackingSettings()
    assert s.timezone == "Asia/Shanghai"
    assert s.environment == "development"
    assert TrackingSettings(timezone="Asia/Tokyo").timezone == "Asia/Tokyo"
