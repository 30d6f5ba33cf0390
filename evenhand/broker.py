"""kombu's Redis transport with one repair, for a Celery 5.7 bug that kills workers on a broker
outage.

When the connection to Redis is lost while late-acknowledged tasks run, Celery 5.7's consumer
`collect()`s the broken connection, which drops the transport's connection info, and reconnects
with a new one. The old channel is still used afterwards: closing it restores unacknowledged
messages, and a task that finishes acknowledges its message on it. Both read the dropped
connection info and raise AttributeError, which Celery treats as unrecoverable: the worker shuts
down (compare celery/celery#9250, celery/kombu#582).

Here the old channel raises a connection error instead, which Celery and kombu already handle
(the close is ignored, the failed ack is logged). The unacknowledged messages stay in Redis's
unacked set until kombu restores them after the visibility timeout; a redelivered task finds its
job already finished and does nothing (evenhand.jobs.claim_job). tests/test_reliability.py
restarts Redis under load to hold all this.
"""

from typing import Any

from kombu.transport import redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection.client is None:
            raise RedisConnectionError("the broker connection of this channel was closed")
        return super()._connparams(asynchronous=asynchronous)


class Transport(redis.Transport):
    Channel = Channel
