"""The idempotent Kafka producer used by the outbox relay and the DLQ path, and its partitioner."""

from __future__ import annotations

import random
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from murmurhash2 import murmurhash2

#: The producer's ``max_request_size`` (aiokafka's default, 1 MiB): the largest record
#: (key, value and headers as a record batch) the relay sends.
MAX_REQUEST_BYTES = 1_048_576

#: The seed of Kafka's murmur2 (``org.apache.kafka.common.utils.Utils.murmur2``).
MURMUR2_SEED = 0x9747B28C


def partition_for(key: bytes, partitions: Sequence[int]) -> int:
    """Return the partition Kafka's default partitioner gives ``key``.

    The rule of the Java client and of aiokafka's ``DefaultPartitioner``:
    ``partitions[(murmur2(key) & 0x7fffffff) % len(partitions)]`` with ``partitions`` in
    ascending order, so a key lands where any other Kafka client would put it and every
    event of one subject (the key) keeps its order. murmur2 comes from the ``murmurhash2``
    package (compiled Rust; 0.2 us for a 36-byte key where aiokafka's pure-Python one takes
    about 6 us: about a tenth of the relay's CPU per event, ``bench/bench_relay.py``); the
    test suite checks that both give the same hash.

    Args:
        key: the message key (bytes).
        partitions: the topic's partition ids in ascending order (non-empty).

    Raises:
        ZeroDivisionError: ``partitions`` is empty.
    """
    return partitions[(murmurhash2(key, MURMUR2_SEED) & 0x7FFFFFFF) % len(partitions)]


class Murmur2Partitioner:
    """aiokafka partitioner with :func:`partition_for`'s rule (same partitions as the default).

    A message without a key goes to a random available partition (any partition when none
    is available), as with aiokafka's ``DefaultPartitioner``.
    """

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        """Return the partition of ``key`` among ``all_partitions`` (aiokafka's signature)."""
        if key is None:
            return random.choice(available or all_partitions)
        return partition_for(key, sorted(all_partitions))


def make_producer(bootstrap_servers: str, *, client_id: str) -> AIOKafkaProducer:
    """Create (not start) a producer with ``acks=all`` and idempotence (ARCHITECTURE.md §3).

    Args:
        bootstrap_servers: comma-separated ``host:port`` list.
        client_id: shown in broker logs and metrics (the service name).
    """
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=2,
        request_timeout_ms=15000,
        partitioner=Murmur2Partitioner(),
        max_request_size=MAX_REQUEST_BYTES,
    )
