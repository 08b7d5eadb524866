"""Topic names, their partition counts, and the consumer group of each service.

Topic names are the only place these strings appear; services import the constants
(STYLE.md §4). One topic per event type, named ``<entity>.<event>``; dead letters go to
``<topic>.dlq``. The key of every message is the aggregate id, so all events of one
complaint, case or suggestion stay in order on one partition.
"""

from __future__ import annotations

from typing import Final

COMPLAINTS_RECEIVED: Final = "complaints.received"
SUGGESTIONS_RECEIVED: Final = "suggestions.received"
COMPLAINTS_ROUTED: Final = "complaints.routed"
COMPLAINTS_REROUTED: Final = "complaints.rerouted"
SUGGESTIONS_SCREENED: Final = "suggestions.screened"
CASES_OPENED: Final = "cases.opened"
CASES_STATUS_CHANGED: Final = "cases.status-changed"
CASES_SLA_WARNING: Final = "cases.sla-warning"
CASES_SLA_BREACHED: Final = "cases.sla-breached"
CASES_RESOLVED: Final = "cases.resolved"
CASES_RESULT_NOTIFIED: Final = "cases.result-notified"
CASES_REOPENED: Final = "cases.reopened"
CASES_CLOSED: Final = "cases.closed"
SUGGESTIONS_DECIDED: Final = "suggestions.decided"
SUGGESTIONS_IMPLEMENTED: Final = "suggestions.implemented"
SUGGESTIONS_REWARDED: Final = "suggestions.rewarded"
CUSTOMER_NOTIFICATIONS: Final = "customer.notifications"
FOLLOWUPS_SCHEDULED: Final = "followups.scheduled"
FOLLOWUPS_COMPLETED: Final = "followups.completed"
FOLLOWUPS_VISIT_WARNING: Final = "followups.visit-warning"
FOLLOWUPS_VISIT_OVERDUE: Final = "followups.visit-overdue"

DLQ_SUFFIX: Final = ".dlq"

#: Every topic the platform uses, with its partition count. Six partitions let up to six
#: replicas of one consumer group share a topic; the local broker has one node, so the
#: replication factor is 1 there and 3 in production (k8s/).
TOPIC_PARTITIONS: Final[dict[str, int]] = {
    COMPLAINTS_RECEIVED: 6,
    SUGGESTIONS_RECEIVED: 3,
    COMPLAINTS_ROUTED: 6,
    COMPLAINTS_REROUTED: 3,
    SUGGESTIONS_SCREENED: 3,
    CASES_OPENED: 6,
    CASES_STATUS_CHANGED: 6,
    CASES_SLA_WARNING: 3,
    CASES_SLA_BREACHED: 3,
    CASES_RESOLVED: 6,
    CASES_RESULT_NOTIFIED: 6,
    CASES_REOPENED: 3,
    CASES_CLOSED: 6,
    SUGGESTIONS_DECIDED: 3,
    SUGGESTIONS_IMPLEMENTED: 3,
    SUGGESTIONS_REWARDED: 3,
    CUSTOMER_NOTIFICATIONS: 6,
    FOLLOWUPS_SCHEDULED: 3,
    FOLLOWUPS_COMPLETED: 3,
    FOLLOWUPS_VISIT_WARNING: 3,
    FOLLOWUPS_VISIT_OVERDUE: 3,
}

#: Consumer group of each service (ARCHITECTURE.md §2): the service name.
SERVICES: Final = ("intake", "routing", "tracking", "followup", "analytics")

#: Default HTTP port of each service (ARCHITECTURE.md §2).
SERVICE_PORTS: Final[dict[str, int]] = {
    "intake": 8001,
    "routing": 8002,
    "tracking": 8003,
    "followup": 8004,
    "analytics": 8005,
}


def dlq_topic(topic: str) -> str:
    """Return the dead-letter topic of ``topic`` (``<topic>.dlq``)."""
    return topic + DLQ_SUFFIX


def all_topics() -> dict[str, int]:
    """Return every topic including the dead-letter topics, mapped to partition counts.

    Dead-letter topics get one partition: they are read by people, not by scaled consumers.
    """
    topics = dict(TOPIC_PARTITIONS)
    topics.update({dlq_topic(t): 1 for t in TOPIC_PARTITIONS})
    return topics
