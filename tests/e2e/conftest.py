"""The five services as separate processes, shared by the end-to-end tests of one run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.events.registry import SERVICES
from shared.runner import ServiceSupervisor


@pytest.fixture(scope="session")
def services(
    platform_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceSupervisor]:
    """Start intake, routing, tracking, followup and analytics on free ports; stop them after.

    Follow-up visits are due on the day of the result (``FOLLOWUP_DELAY_WORKING_DAYS=0``) and
    unreachable tries need no spacing, so a test can call back at once.
    """
    sup = ServiceSupervisor(
        env={
            **platform_env,
            "FOLLOWUP_DELAY_WORKING_DAYS": "0",
            "FOLLOWUP_RETRY_SPACING_WORKING_DAYS": "0",
        },
        ports=dict.fromkeys(SERVICES, 0),
        log_dir=tmp_path_factory.mktemp("service-logs"),
    )
    sup.start()
    try:
        sup.wait_ready(timeout_seconds=120)
        yield sup
    finally:
        codes = sup.stop()
        # uvicorn re-raises the SIGTERM it handled after a graceful shutdown: -15, not -9.
        assert all(code in (0, -15) for code in codes.values()), codes
