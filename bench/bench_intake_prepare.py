"""Time intake's ``prepare`` (everything of a submission before the database) in a loop.

Run from the repository root (no servers needed):

    uv run python bench/bench_intake_prepare.py [--n 2000] [--repeat 7]

``prepare`` is the request's own CPU work in intake: pseudonymous key (HMAC-SHA256),
redaction, language detection, reference and ids, AES-256-GCM vault row, the
``complaint.received`` envelope, the request hash and the batch statement's JSON object
(docs/intake.md). The body is ``bench_intake.py``'s, with a different customer, text and
``Idempotency-Key`` per call. Prints the median and the minimum over ``--repeat`` passes of
microseconds per call (one CPU, nothing else measured; run it twice, the machine is shared).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_intake import _BODY_MARK, _body_template

from services.intake.domain.submission import service
from services.intake.domain.submission.schemas import ComplaintCreate
from services.intake.settings import IntakeSettings
from shared.auth import Principal
from shared.privacy import Vault


def main() -> None:
    """Parse the arguments, run the passes, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="calls per pass")
    parser.add_argument("--repeat", type=int, default=7, help="passes")
    args = parser.parse_args()
    settings = IntakeSettings()
    vault = Vault(settings.vault_keys.get_secret_value())
    principal = Principal(subject="bench", roles=frozenset({"intake_client"}))
    template = _body_template()
    bodies = [
        ComplaintCreate.model_validate_json(template.replace(_BODY_MARK, str(i)))
        for i in range(args.n)
    ]
    per_call: list[float] = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        for i, body in enumerate(bodies):
            service.prepare(
                kind="complaint",
                body=body,
                principal=principal,
                settings=settings,
                vault=vault,
                now=datetime.now(UTC),
                idempotency_key=f"bench-{i}",
            )
        per_call.append((time.perf_counter() - started) / args.n * 1e6)
    print(
        f"prepare: {statistics.median(per_call):.1f} us per call "
        f"(min {min(per_call):.1f}, max {max(per_call):.1f}; {args.repeat} x {args.n})"
    )


if __name__ == "__main__":
    main()
