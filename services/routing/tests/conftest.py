"""Fixtures of the routing tests: the platform's session fixtures (tests/conftest.py).

pytest only applies ``tests/conftest.py`` to tests under ``tests/``; importing its fixtures
here gives the routing tests the same fresh database (every service migrated), per-run
topic prefix, tokens and in-process client.
"""

from tests.conftest import (  # noqa: F401 - fixtures are found by name
    database_url,
    jwt_secret,
    kafka_bootstrap,
    platform_env,
    server_url,
    token_for,
    topic_prefix,
)
