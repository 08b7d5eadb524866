"""Vault key rotation (issue 3 §3), run by ``cfp rotate-vault-keys``.

Re-encrypts, batch by batch, every vault row whose key id is not the current key (the
first of ``CFP_VAULT_KEYS``), and writes one ``vault.rotate`` audit row per run.
"""

from __future__ import annotations

from sqlalchemy import insert

from services.intake import tables
from services.intake.domain.submission import service as submission_service
from services.intake.settings import IntakeSettings
from shared.db import make_engine, make_sessionmaker
from shared.privacy import Vault


async def rotate_all(
    *, batch_size: int = 500, actor: str = "cli", settings: IntakeSettings | None = None
) -> dict[str, object]:
    """Re-encrypt all vault rows under the current key.

    Args:
        batch_size: rows per transaction, >= 1.
        actor: written to the audit row.
        settings: defaults to the environment's intake settings.

    Returns:
        ``{"current_key", "reencrypted", "from_keys", "rows_per_key"}``.

    Raises:
        KeyError: a row's key id is not configured (add the old key after the new one).
    """
    settings = settings or IntakeSettings()
    vault = Vault(settings.vault_keys.get_secret_value())
    engine = make_engine(settings.database_url, pool_size=1, application_name="intake-rotate")
    sm = make_sessionmaker(engine)
    total = 0
    from_keys: dict[str, int] = {}
    try:
        while True:
            async with sm() as session, session.begin():
                n, by_key = await submission_service.rotate_vault_keys(
                    session=session, vault=vault, batch_size=batch_size
                )
            total += n
            for k, v in by_key.items():
                from_keys[k] = from_keys.get(k, 0) + v
            if n == 0:
                break
        async with sm() as session, session.begin():
            await session.execute(
                insert(tables.audit_log).values(
                    actor=actor,
                    actor_roles="admin",
                    action="vault.rotate",
                    subject_type="vault",
                    subject_id=vault.current,
                    details={"reencrypted": total, "from_keys": from_keys},
                )
            )
            per_key = await submission_service.count_by_key(session=session)
    finally:
        await engine.dispose()
    return {
        "current_key": vault.current,
        "reencrypted": total,
        "from_keys": from_keys,
        "rows_per_key": per_key,
    }
