"""Webhooks: a job that ends is POSTed to its `callback_url`, signed, retried with backoff, and
guarded against SSRF like URL input.

The signature is `X-Evenhand-Signature: sha256=<hex>`, an HMAC-SHA256 over
`<X-Evenhand-Timestamp>.<body>` whose secret is the hex SHA-256 of the API key that submitted the
job: the receiver derives it from its own key, and the server stores nothing new.
"""

import hashlib
import hmac
import time
import uuid

import httpx
import structlog

from kernel.config import Settings
from kernel.db import session_scope
from kernel.jobs import job_public
from kernel.models import ApiKey, Job
from worker.errors import PipelineError
from worker.fetch import FetchPolicy, check_url

log = structlog.get_logger(__name__)


class DeliveryFailed(Exception):
    """The receiver could not be reached or did not answer 2xx: worth another try."""


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def deliver(job_id: uuid.UUID, settings: Settings) -> bool:
    """POST the finished job to its callback URL once. True when delivered, False when there is
    nothing to deliver or the URL is refused; DeliveryFailed when another try may work."""
    with session_scope() as session:
        job = session.get(Job, job_id)
        if job is None or job.callback_url is None:
            return False
        owner = session.get(ApiKey, job.owner_id)
        assert owner is not None
        body = job_public(session, job).model_dump_json().encode()
        url, secret = job.callback_url, owner.key_hash
    policy = FetchPolicy(
        timeout=settings.webhook_timeout, allow_private=settings.fetch_allow_private
    )
    try:
        check_url(url, policy)  # resolved and checked before every attempt
    except PipelineError as exc:
        log.warning("webhook_refused", code=exc.code)
        return False
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": policy.user_agent,
        "X-Evenhand-Timestamp": timestamp,
        "X-Evenhand-Signature": signature(secret, timestamp, body),
        "X-Evenhand-Job": str(job_id),
    }
    try:
        # no redirects: a receiver that redirects could point us at an internal address
        response = httpx.post(
            url,
            content=body,
            headers=headers,
            timeout=settings.webhook_timeout,
            follow_redirects=False,
        )
    except httpx.HTTPError as exc:
        raise DeliveryFailed(type(exc).__name__) from None
    if not response.is_success:
        raise DeliveryFailed(f"status {response.status_code}")
    log.info("webhook_delivered", status=response.status_code)
    return True
