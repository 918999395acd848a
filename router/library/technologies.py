"""Which well-known systems (PostgreSQL, Redis, Kafka…) and resources (memory, disk, CPU)
a text names, by their usual names.

An alert about Redis is not answered by a section about Memcached, however alike their
words ("memory", "evictions"): when both name a system and they share none, the section
is about something else.
"""

from __future__ import annotations

from collections.abc import Iterable

from router.library.terms import terms

_SYSTEMS: dict[str, str] = {
    "postgres": "postgres postgresql pg patroni pgbouncer cnpg cloudnativepg",
    "mysql": "mysql mariadb",
    "redis": "redis",
    "memcached": "memcached memcache",
    "kafka": "kafka",
    "rabbitmq": "rabbitmq",
    "elasticsearch": "elasticsearch opensearch",
    "mongodb": "mongodb mongo",
    "cassandra": "cassandra",
    "etcd": "etcd",
    "zookeeper": "zookeeper",
    "nginx": "nginx",
    "haproxy": "haproxy",
    "envoy": "envoy",
    "coredns": "coredns",
    "nats": "nats",
    "clickhouse": "clickhouse",
}
# The resource a problem is about: a disk alert is not answered by a memory section.
_RESOURCES: dict[str, str] = {
    "memory": "memory oom oomkilled ram heap",
    "disk": "disk storage volume pvc filesystem inode",
    "cpu": "cpu throttling throttled",
}
_BY_TERM = {term: system for system, names in _SYSTEMS.items() for term in terms(names)}
_RESOURCE_BY_TERM = {t: resource for resource, names in _RESOURCES.items() for t in terms(names)}


def systems(found: Iterable[str]) -> frozenset[str]:
    """The systems named among these search terms."""
    return frozenset(_BY_TERM[t] for t in found if t in _BY_TERM)


def resources(found: Iterable[str]) -> frozenset[str]:
    """The resources (memory, disk, CPU) named among these search terms."""
    return frozenset(_RESOURCE_BY_TERM[t] for t in found if t in _RESOURCE_BY_TERM)
