"""Settings defaults and API key handling."""

import asyncio
from pathlib import Path

import pytest
from sqlmodel import Session

from api.deps import KeyCache
from kernel import config, db
from kernel.config import Settings
from kernel.db import make_engine
from kernel.keys import create_key, find_active_key, hash_key, revoke_key
from kernel.migrate import upgrade_to_head


def test_provider_defaults_to_extractive_without_an_llm(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "EVENHAND_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    assert Settings(_env_file=None).provider == "extractive"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/v1")
    assert Settings(_env_file=None).provider == "openai"
    monkeypatch.setenv("EVENHAND_PROVIDER", "extractive")
    assert Settings(_env_file=None).provider == "extractive"


def test_keys_are_stored_hashed_and_revocable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    # the cached settings and engine must see this URL
    config.get_settings.cache_clear()
    db.get_engine.cache_clear()
    try:
        upgrade_to_head()
        with Session(make_engine(url)) as session:
            row, plaintext = create_key(session, "team")
            assert plaintext.startswith("eh_") and len(plaintext) > 40
            assert row.key_hash == hash_key(plaintext) and plaintext not in row.key_hash
            assert row.prefix == plaintext[: len(row.prefix)]
            assert find_active_key(session, plaintext) == row
            assert find_active_key(session, plaintext + "x") is None
            assert row.id is not None
            revoke_key(session, row.id)
            assert find_active_key(session, plaintext) is None
    finally:
        config.get_settings.cache_clear()
        db.get_engine.cache_clear()


def test_the_key_cache_keeps_active_keys_for_its_ttl_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cache.db'}")
    config.get_settings.cache_clear()
    db.get_engine.cache_clear()
    try:
        upgrade_to_head()
        with Session(db.get_engine()) as session:
            row, plaintext = create_key(session, "cached")
            assert row.id is not None
            key_id = row.id

        async def scenario() -> None:
            cache, uncached = KeyCache(ttl=0.5), KeyCache(ttl=0)
            assert (await cache.find(plaintext)).id == key_id  # type: ignore[union-attr]
            assert await cache.find("eh_unknown") is None
            with Session(db.get_engine()) as session:
                revoke_key(session, key_id)
            # trusted until its lookup is 0.5 s old; an uncached lookup sees the revocation
            assert (await cache.find(plaintext)).id == key_id  # type: ignore[union-attr]
            assert await uncached.find(plaintext) is None
            await asyncio.sleep(0.6)
            assert await cache.find(plaintext) is None

        asyncio.run(scenario())
    finally:
        config.get_settings.cache_clear()
        db.get_engine.cache_clear()
