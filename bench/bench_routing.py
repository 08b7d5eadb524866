"""Routing benchmark: classifications per second, and the latency routing adds per complaint.

Run: ``uv run python bench/bench_routing.py [--n 300] [--latency-n 100]``.

1. Classifications per second in one process, one thread: ``ComplaintClassifier.predict``
   on CFPB narratives (long English letters), BANKING77 queries (short English) and ICBC
   app reviews (Chinese), read from the team's data folder.
2. The pipeline step: the routing app (its real consumer, outbox relay and PostgreSQL, in
   this process) on a scratch database and topic prefix of the local Kafka. Complaints are
   produced to ``complaints.received`` one at a time and the clock stops when the matching
   ``complaints.routed`` event is read back: that is the latency routing adds per
   complaint (event in -> routed event out). The same run with a constant stand-in
   classifier gives the plumbing-only baseline (Kafka, consumer transaction, outbox,
   relay), so the difference is what classification adds. Then a burst of ``--n`` events
   gives the sustained events per second.

Figures go to stdout; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: E402

from services.routing.classifier import ComplaintClassifier, Prediction  # noqa: E402
from services.routing.classifier.data import (  # noqa: E402
    BANKING77,
    CFPB_FULL,
    load_icbc_reviews,
    load_source,
)
from services.routing.classifier.rules import warm_up  # noqa: E402
from services.routing.main import create_app  # noqa: E402
from services.routing.settings import RoutingSettings  # noqa: E402
from shared import devinfra, migrations  # noqa: E402
from shared.events.contracts.complaints import (  # noqa: E402
    COMPLAINT_RECEIVED_V1,
    ComplaintReceived,
)
from shared.events.envelope import new_event, to_wire  # noqa: E402
from shared.events.registry import (  # noqa: E402
    COMPLAINTS_RECEIVED,
    COMPLAINTS_ROUTED,
    all_topics,
)


class ConstantClassifier:
    """Stand-in with the classifier's interface and no work: the plumbing baseline."""

    version = "constant"

    def predict(self, text: str, **_: Any) -> Prediction:
        """Return the same prediction for every text."""
        return Prediction(
            category="service_quality",
            product_line="deposits",
            category_confidence=0.9,
            product_line_confidence=0.9,
            confidence=0.9,
            language="en",
            explanation={"decided_by": {"category": "constant", "product_line": "constant"}},
        )


def classifier_rates(clf: ComplaintClassifier, data: Path, n: int) -> None:
    """Print predict() rates per kind of text."""
    rng = random.Random(7)
    pools = {
        "en CFPB narratives": [e.text for e in load_source(data, CFPB_FULL)],
        "en BANKING77 queries": [e.text for e in load_source(data, BANKING77)],
        "zh ICBC app reviews": load_icbc_reviews(data),
    }
    for name, pool in pools.items():
        texts = rng.sample(pool, min(n, len(pool)))
        clf.predict(texts[0])
        started = time.perf_counter()
        for text in texts:
            clf.predict(text)
        single = len(texts) / (time.perf_counter() - started)
        started = time.perf_counter()
        clf.predict_many(texts)
        batch = len(texts) / (time.perf_counter() - started)
        mean_chars = sum(map(len, texts)) / len(texts)
        print(
            f"{name:22} n={len(texts):4} mean {mean_chars:5.0f} chars: "
            f"predict {single:7.1f}/s ({1000 / single:5.2f} ms each), "
            f"predict_many {batch:7.1f}/s"
        )


def _event(text: str) -> Any:
    cid = str(uuid.uuid4())
    return new_event(
        source="intake",
        type_=COMPLAINT_RECEIVED_V1,
        subject=cid,
        data=ComplaintReceived(
            complaint_id=cid,
            reference="C-BENCH-" + cid[:6],
            channel="web",
            received_at=datetime.now(UTC),
            customer_key="cus_" + uuid.uuid4().hex[:16],
            description=text,
        ),
    )


async def pipeline(
    settings: RoutingSettings,
    classifier: Any,
    texts: list[str],
    latency_n: int,
    burst_n: int,
) -> tuple[list[float], float]:
    """Run the routing app; return per-complaint latencies (s) and the burst rate (events/s)."""
    app = create_app(settings)
    app.state.runtime.classifier = classifier
    prefix = settings.kafka_topic_prefix
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    reader = AIOKafkaConsumer(
        prefix + COMPLAINTS_ROUTED,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None,
        auto_offset_reset="latest",
    )
    loop = asyncio.get_running_loop()
    arrivals: dict[str, asyncio.Future[float]] = {}

    def expect(subject: str) -> asyncio.Future[float]:
        return arrivals.setdefault(subject, loop.create_future())

    async def read() -> None:
        while True:
            batch = await reader.getmany(timeout_ms=100)
            now = time.perf_counter()
            for records in batch.values():
                for r in records:
                    fut = expect(json.loads(r.value)["subject"])
                    if not fut.done():
                        fut.set_result(now)

    async with app.router.lifespan_context(app):
        await producer.start()
        await reader.start()
        await reader.seek_to_end()
        task = asyncio.create_task(read())
        try:
            # warm-up: the consumer must be assigned and the first round trip done
            env = _event("warm-up complaint")
            key, value, headers = to_wire(env)
            await producer.send_and_wait(prefix + COMPLAINTS_RECEIVED, value, key, headers=headers)
            await asyncio.wait_for(expect(env.subject), 120)
            latencies = []
            for i in range(latency_n):
                env = _event(texts[i % len(texts)])
                key, value, headers = to_wire(env)
                started = time.perf_counter()
                await producer.send_and_wait(
                    prefix + COMPLAINTS_RECEIVED, value, key, headers=headers
                )
                arrived = await asyncio.wait_for(expect(env.subject), 60)
                latencies.append(arrived - started)
            envs = [_event(texts[i % len(texts)]) for i in range(burst_n)]
            started = time.perf_counter()
            for env in envs:
                key, value, headers = to_wire(env)
                await producer.send(prefix + COMPLAINTS_RECEIVED, value, key, headers=headers)
            await producer.flush()
            await asyncio.wait_for(asyncio.gather(*(expect(e.subject) for e in envs)), 600)
            rate = burst_n / (time.perf_counter() - started)
        finally:
            task.cancel()
            await reader.stop()
            await producer.stop()
    return latencies, rate


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    """Print the classifier rates and the pipeline figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    parser.add_argument("--n", type=int, default=300, help="texts per kind; burst size")
    parser.add_argument("--latency-n", type=int, default=100, help="sequential complaints")
    args = parser.parse_args()

    started = time.perf_counter()
    clf = ComplaintClassifier.load()
    warm_up()
    print(f"classifier {clf.version}: load + warm-up {time.perf_counter() - started:.2f} s")
    classifier_rates(clf, args.data, args.n)

    server = devinfra.ensure_postgres()
    kafka = devinfra.ensure_kafka()
    name = f"cfp_bench_routing_{uuid.uuid4().hex[:8]}"
    db = devinfra.create_database(server, name)
    try:
        migrations.upgrade("routing", database_url=db)
        texts = [e.text for e in load_source(args.data, CFPB_FULL)]
        random.Random(11).shuffle(texts)
        results = {}
        for label, classifier in (("constant", ConstantClassifier()), ("classifier", clf)):
            prefix = f"br{uuid.uuid4().hex[:6]}."
            devinfra.create_topics(kafka, all_topics(), prefix=prefix)
            settings = RoutingSettings(
                database_url=db, kafka_bootstrap_servers=kafka, kafka_topic_prefix=prefix
            )
            results[label] = asyncio.run(
                pipeline(settings, classifier, texts, args.latency_n, args.n)
            )
        for label, (lat, rate) in results.items():
            print(
                f"pipeline with {label:10}: event in -> routed out p50 {_ms(lat, 0.5):6.1f} ms, "
                f"p95 {_ms(lat, 0.95):6.1f} ms, mean {1000 * statistics.mean(lat):6.1f} ms "
                f"(n={len(lat)}); burst of {args.n}: {rate:6.1f} events/s"
            )
        base, real = results["constant"], results["classifier"]
        print(
            "classification adds "
            f"{1000 * (statistics.median(real[0]) - statistics.median(base[0])):.1f} ms "
            f"per complaint at p50; sustained rate {real[1] / base[1]:.2f}x the plumbing-only rate"
        )
    finally:
        devinfra.drop_database(server, name)


if __name__ == "__main__":
    main()
