"""kombu's Redis transport with one repair, for a Celery 5.7 bug that kills workers on a broker
outage, and one saving: a reused Redis client per channel.

When the connection to Redis is lost while late-acknowledged tasks run, Celery 5.7's consumer
`collect()`s the broken connection, which drops the transport's connection info, and reconnects
with a new one. The old channel is still used afterwards: closing it restores unacknowledged
messages, and a task that finishes acknowledges its message on it. Both read the dropped
connection info and raise AttributeError, which Celery treats as unrecoverable: the worker shuts
down (compare celery/celery#9250, celery/kombu#582).

Here the old channel raises a connection error instead, which Celery and kombu already handle
(the close is ignored, the failed ack is logged). The unacknowledged messages stay in Redis's
unacked set until kombu restores them after the visibility timeout; a redelivered task finds its
job already finished and does nothing (kernel.jobs.claim_job). tests/e2e/test_reliability.py
restarts Redis under load to hold all this.
"""

from typing import Any

from kombu.transport import redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(redis.Channel):
    _client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        # kombu builds a new redis client for every command it sends (each ack, each publish,
        # each task event), which cost a worker more CPU than the commands: one client per
        # channel and connection pool is enough, since a redis-py client is thread-safe and
        # holds no connection of its own (they live in the pool).
        if asynchronous:
            return super()._create_client(asynchronous=True)
        if self._client is None or self._client.connection_pool is not self.pool:
            self._client = super()._create_client()
        return self._client

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection.client is None:
            raise RedisConnectionError("the broker connection of this channel was closed")
        return super()._connparams(asynchronous=asynchronous)


class Transport(redis.Transport):
    Channel = Channel
