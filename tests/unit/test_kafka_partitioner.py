"""The producer's partitioner puts every key where Kafka's default partitioner does.

Per-key order (every event of a complaint on one partition) holds across the platform only if
every producer maps a key to the same partition: the relay's :func:`partition_for` (murmur2
compiled) must agree with aiokafka's pure-Python ``DefaultPartitioner`` (the Java client's
rule) for every key and partition count.
"""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner, murmur2
from hypothesis import given
from hypothesis import strategies as st

from shared.kafka.producer import Murmur2Partitioner, partition_for


@given(key=st.binary(max_size=200), count=st.integers(min_value=1, max_value=128))
def test_partition_for_equals_the_default_partitioner(key: bytes, count: int) -> None:
    partitions = list(range(count))
    assert partition_for(key, partitions) == DefaultPartitioner()(key, partitions, partitions)


@given(key=st.uuids().map(lambda u: str(u).encode()), count=st.integers(1, 64))
def test_partition_for_equals_the_default_partitioner_for_subject_keys(
    key: bytes, count: int
) -> None:
    partitions = list(range(count))
    assert partition_for(key, partitions) == DefaultPartitioner()(key, partitions, partitions)


def test_known_hash_of_the_java_client() -> None:
    # org.apache.kafka.common.utils.Utils.murmur2("hello".getBytes()) == 2132663229
    assert murmur2(b"hello") == 2132663229
    assert partition_for(b"hello", list(range(1000))) == 2132663229 % 1000


@given(
    key=st.binary(min_size=1, max_size=64),
    partitions=st.lists(st.integers(0, 50), min_size=1, max_size=20, unique=True),
)
def test_the_partitioner_sorts_the_partitions(key: bytes, partitions: list[int]) -> None:
    """aiokafka hands the partitions over as a list made from a set: order must not matter."""
    expected = partition_for(key, sorted(partitions))
    assert Murmur2Partitioner()(key, partitions, partitions) == expected
    assert Murmur2Partitioner()(key, list(reversed(partitions)), []) == expected


def test_a_message_without_key_goes_to_an_available_partition() -> None:
    partitioner = Murmur2Partitioner()
    assert {partitioner(None, [0, 1, 2], [2]) for _ in range(50)} == {2}
    assert {partitioner(None, [0, 1, 2], []) for _ in range(200)} == {0, 1, 2}
