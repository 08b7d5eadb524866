"""Platform-wide settings shared by every service (pydantic-settings).

Platform values keep their plain environment names (``DATABASE_URL``,
``KAFKA_BOOTSTRAP_SERVERS``, ARCHITECTURE.md §6); project values use the ``CFP_`` prefix.
Each service builds its own ``Settings`` on top of :class:`PlatformSettings` and adds its
service-only values with its own prefix (``INTAKE_``, ``ROUTING_``, ...), STYLE.md §2.

The defaults point at the local infrastructure that ``cfp infra up`` starts
(PostgreSQL on 127.0.0.1:55432, Kafka on 127.0.0.1:59092) and carry development secrets;
with ``CFP_ENVIRONMENT=production`` the settings refuse to start on any default secret.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "postgresql+asyncpg://cfp:cfp@127.0.0.1:55432/cfp"
DEFAULT_KAFKA_BOOTSTRAP_SERVERS = "127.0.0.1:59092"
_DEV_JWT_SECRET = "dev-only-jwt-secret-change-me-0123456789abcdef"
_DEV_PSEUDONYM_KEY = "dev-only-pseudonym-key-change-me"
_DEV_VAULT_KEYS = "k1:ZGV2LW9ubHktdmF1bHQta2V5LTMyLWJ5dGVzLWxvbmc="


def _env(field: str) -> AliasChoices:
    """Return the alias that reads ``CFP_<FIELD>`` whatever prefix a service's subclass sets.

    Services subclass these settings with their own ``env_prefix`` (``INTAKE_`` ...); without
    an explicit alias the platform fields would silently be read as ``INTAKE_JWT_SECRET``.
    """
    # Only the prefixed name: environment matching ignores case, so a bare ``field`` alias
    # would let a stray TIMEZONE or ENVIRONMENT variable change the platform. Code still
    # passes values by field name (``populate_by_name``).
    return AliasChoices(f"CFP_{field.upper()}")


class PlatformSettings(BaseSettings):
    """Settings every service reads.

    Attributes:
        environment: ``development`` allows the documented dev secrets; ``production``
            refuses them at start-up (ValueError).
        database_url: SQLAlchemy async URL (``postgresql+asyncpg://...``), env ``DATABASE_URL``.
        kafka_bootstrap_servers: comma-separated ``host:port`` list, env
            ``KAFKA_BOOTSTRAP_SERVERS``.
        kafka_topic_prefix: prepended to every topic name on the wire (tests use it to
            isolate runs on a shared broker); empty by default.
        timezone: IANA zone in which working days and report periods are computed.
        jwt_secret: HMAC key (HS256) that signs and verifies bearer tokens.
        pseudonym_key: HMAC key for pseudonymous customer keys (ARCHITECTURE.md §3).
        vault_keys: personal-data keys, ``id:base64key[,id:base64key...]``; the first is
            used to encrypt, all are tried to decrypt (rotation).
        log_level: ``DEBUG`` .. ``ERROR``.
        db_pool_size: connections kept per process.
        relay_in_process: run the outbox relay inside the service process (default); with
            false, run it as its own process (``cfp relay <service>``), which takes the
            publishing work (about a tenth of intake's CPU under load) off the process that
            answers requests (docs/intake.md "Benchmark").
        outbox_retention_hours: outbox rows published longer ago than this (hours) are
            deleted by the relay, a few thousand at a time every few minutes; 0 keeps
            them forever. Kafka keeps what was published (30 days in the
            manifests), the services' tables keep the state: the outbox is a staging table,
            kept a week by default for investigations.
    """

    model_config = SettingsConfigDict(env_prefix="CFP_", extra="ignore", populate_by_name=True)

    environment: Literal["development", "production"] = Field(
        "development", validation_alias=_env("environment")
    )
    database_url: str = Field(
        DEFAULT_DATABASE_URL, validation_alias=AliasChoices("DATABASE_URL", "database_url")
    )
    kafka_bootstrap_servers: str = Field(
        DEFAULT_KAFKA_BOOTSTRAP_SERVERS,
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "kafka_bootstrap_servers"),
    )
    kafka_topic_prefix: str = Field(
        "", validation_alias=AliasChoices("KAFKA_TOPIC_PREFIX", "kafka_topic_prefix")
    )
    timezone: str = Field("Asia/Shanghai", validation_alias=_env("timezone"))
    jwt_secret: SecretStr = Field(SecretStr(_DEV_JWT_SECRET), validation_alias=_env("jwt_secret"))
    pseudonym_key: SecretStr = Field(
        SecretStr(_DEV_PSEUDONYM_KEY), validation_alias=_env("pseudonym_key")
    )
    vault_keys: SecretStr = Field(SecretStr(_DEV_VAULT_KEYS), validation_alias=_env("vault_keys"))
    log_level: str = Field("INFO", validation_alias=AliasChoices("LOG_LEVEL", "log_level"))
    db_pool_size: int = Field(10, ge=1, le=200, validation_alias=_env("db_pool_size"))
    relay_in_process: bool = Field(True, validation_alias=_env("relay_in_process"))
    outbox_retention_hours: int = Field(
        168, ge=0, le=24 * 3660, validation_alias=_env("outbox_retention_hours")
    )

    @model_validator(mode="after")
    def _refuse_dev_secrets_in_production(self) -> PlatformSettings:
        if self.environment == "production":
            defaults = {
                "CFP_JWT_SECRET": (self.jwt_secret, _DEV_JWT_SECRET),
                "CFP_PSEUDONYM_KEY": (self.pseudonym_key, _DEV_PSEUDONYM_KEY),
                "CFP_VAULT_KEYS": (self.vault_keys, _DEV_VAULT_KEYS),
            }
            bad = [
                name for name, (value, dev) in defaults.items() if value.get_secret_value() == dev
            ]
            if bad:
                raise ValueError(f"production refuses development secrets: set {', '.join(bad)}")
        return self

    def topic(self, name: str) -> str:
        """Return the wire name of logical topic ``name`` (with the configured prefix)."""
        return self.kafka_topic_prefix + name
