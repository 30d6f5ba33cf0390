"""API keys: made with a CSPRNG, shown once, stored as SHA-256 hashes.

A plain SHA-256 (not a slow password hash) is right here: keys carry 256 bits of randomness, so
there is nothing to brute-force, and every request must verify one quickly.
"""

import hashlib
import secrets

from sqlmodel import Session, col, select

from kernel.models import ApiKey, utcnow

KEY_PREFIX = "eh_"
PREFIX_LEN = len(KEY_PREFIX) + 8


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    session: Session,
    name: str,
    *,
    rate_limit: str | None = None,
    daily_jobs: int | None = None,
    daily_tokens: int | None = None,
) -> tuple[ApiKey, str]:
    """Store a new key and return it with its plaintext, which is never stored."""
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)  # 256 bits from the OS CSPRNG
    api_key = ApiKey(
        name=name,
        prefix=plaintext[:PREFIX_LEN],
        key_hash=hash_key(plaintext),
        rate_limit=rate_limit,
        daily_jobs=daily_jobs,
        daily_tokens=daily_tokens,
    )
    session.add(api_key)
    session.commit()
    session.refresh(api_key)
    return api_key, plaintext


def find_active_key(session: Session, plaintext: str) -> ApiKey | None:
    api_key = session.exec(select(ApiKey).where(ApiKey.key_hash == hash_key(plaintext))).first()
    if api_key is None or api_key.revoked_at is not None:
        return None
    return api_key


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.exec(select(ApiKey).order_by(col(ApiKey.id))))


def revoke_key(session: Session, key_id: int) -> ApiKey | None:
    api_key = session.get(ApiKey, key_id)
    if api_key is None:
        return None
    if api_key.revoked_at is None:
        api_key.revoked_at = utcnow()
        session.add(api_key)
        session.commit()
    return api_key
