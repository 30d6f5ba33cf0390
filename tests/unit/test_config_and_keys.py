"""Settings defaults and API key handling."""

import asyncio
import os
import socket
import stat
from pathlib import Path

import pytest
import typer
from sqlmodel import Session

from api.deps import KeyCache
from evenhand import cli, config_file, embedded
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


def test_the_default_database_lives_in_the_users_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    settings = Settings(_env_file=None)
    assert settings.database_url == config.default_database_url()
    assert settings.sqlite_path() == tmp_path / "data" / "evenhand" / "evenhand.db"
    assert config.data_dir() == tmp_path / "data" / "evenhand"


def test_the_config_file_is_private_and_keeps_a_key_per_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENHAND_CONFIG_DIR", str(tmp_path / "cfg"))
    assert config_file.load() == config_file.StoredConfig()  # no file yet: nothing saved
    old_umask = os.umask(0)  # even a permissive umask leaves the file private
    try:
        config_file.save_server("https://evenhand.example.org/", "eh_remote")
        path = config_file.save_server("http://127.0.0.1:8000", "eh_local")
    finally:
        os.umask(old_umask)
    assert path == tmp_path / "cfg" / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    stored = config_file.load()
    assert stored.current == "http://127.0.0.1:8000"
    assert stored.key_for("https://evenhand.example.org") == "eh_remote"  # not forgotten
    assert stored.key_for("http://127.0.0.1:8000/") == "eh_local"
    assert [p.name for p in path.parent.iterdir()] == ["config.json"]  # no temporary left


def test_a_broken_config_file_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENHAND_CONFIG_DIR", str(tmp_path))
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(config_file.ConfigFileError, match="delete it"):
        config_file.load()


def test_the_client_takes_options_then_the_environment_then_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENHAND_CONFIG_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # no .env here
    for name in ("EVENHAND_API_URL", "EVENHAND_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    config.get_settings.cache_clear()
    try:
        with pytest.raises(typer.Exit) as missing:
            cli._client()
        assert missing.value.exit_code == 2
        config_file.save_server("http://127.0.0.1:8123", "eh_saved")
        chosen = cli._client()
        assert chosen.base_url == "http://127.0.0.1:8123"
        assert chosen._http.headers["Authorization"] == "Bearer eh_saved"
        chosen = cli._client("http://elsewhere:1", "eh_option")
        assert chosen.base_url == "http://elsewhere:1"
        assert chosen._http.headers["Authorization"] == "Bearer eh_option"
        monkeypatch.setenv("EVENHAND_API_KEY", "eh_env")
        config.get_settings.cache_clear()
        assert cli._client()._http.headers["Authorization"] == "Bearer eh_env"
        monkeypatch.delenv("EVENHAND_API_KEY")
        monkeypatch.setenv("EVENHAND_API_URL", "http://127.0.0.1:9999")  # no key saved for it
        config.get_settings.cache_clear()
        with pytest.raises(typer.Exit):
            cli._client()
    finally:
        config.get_settings.cache_clear()


def test_port_problem_names_the_busy_port_and_the_option_that_moves_it() -> None:
    with socket.socket() as occupied:
        occupied.bind(("127.0.0.1", 0))
        occupied.listen()
        busy = occupied.getsockname()[1]
        free = embedded.free_port()
        api = embedded.Listener("the API", free, "--port")
        flower = embedded.Listener("Flower", busy, "--flower-port")
        problem = embedded.port_problem([api, flower])
        assert problem is not None
        assert f"port {busy} (Flower) is in use" in problem and "--flower-port" in problem
        assert embedded.port_problem([api]) is None
        shared = embedded.port_problem([api, embedded.Listener("Flower", free, "--flower-port")])
        assert shared is not None and "cannot share port" in shared


def test_flower_reads_its_password_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from flower.command import apply_env_options
    from tornado.options import options

    command = embedded.flower_command(5555)
    env = embedded.flower_env({"FLOWER_BASIC_AUTH": "theirs:old", "PATH": "/bin"}, "ops:pw")
    assert not any("pw" in arg for arg in command)
    assert env == {"FLOWER_BASIC_AUTH": "ops:pw", "PATH": "/bin"}
    assert "FLOWER_BASIC_AUTH" not in embedded.flower_env(env, None)  # --flower-no-auth
    # what Flower itself does with the variable
    monkeypatch.setattr(os, "environ", {"FLOWER_BASIC_AUTH": "ops:pw"})
    before = options.basic_auth
    try:
        apply_env_options()
        assert options.basic_auth == ["ops:pw"]
    finally:
        options.basic_auth = before
