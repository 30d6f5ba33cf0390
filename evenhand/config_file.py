"""The per-user config file of the CLI: which API server the client commands talk to, with its key.

`evenhand up` and `evenhand login` write it; `submit`, `status`, `list`, `cancel` and `retry` read
it when neither their options nor EVENHAND_API_URL / EVENHAND_API_KEY name a server or a key.
It holds API keys, so it is readable by its owner only (mode 0600, in a 0700 directory), as gh
keeps its hosts.yml. Keys are stored per server URL, so `up` does not forget a `login`.
"""

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

FILE_NAME = "config.json"
DEFAULT_API_URL = "http://127.0.0.1:8000"


class ConfigFileError(Exception):
    """The config file exists but cannot be used; `str()` says what to do."""


def config_dir() -> Path:
    """EVENHAND_CONFIG_DIR, else the platform's per-user config folder (XDG_CONFIG_HOME on Linux)."""
    if override := os.environ.get("EVENHAND_CONFIG_DIR"):
        return Path(override)
    return Path(platformdirs.user_config_dir("evenhand", appauthor=False))


def config_path() -> Path:
    return config_dir() / FILE_NAME


def normalize_url(url: str) -> str:
    return url.strip().rstrip("/")


@dataclass
class StoredConfig:
    """`current`: the server the client commands use; `keys`: an API key per server URL."""

    current: str | None = None
    keys: dict[str, str] = field(default_factory=dict)

    def key_for(self, url: str) -> str | None:
        return self.keys.get(normalize_url(url))


def load() -> StoredConfig:
    path = config_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return StoredConfig()
    except (OSError, ValueError) as exc:
        raise ConfigFileError(
            f"Cannot read the config file {path} ({exc}); fix it or delete it and run "
            "'evenhand login' again."
        ) from None
    servers = data.get("servers") if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        raise ConfigFileError(
            f"The config file {path} is not one evenhand wrote; delete it and run "
            "'evenhand login' again."
        )
    keys = {
        normalize_url(url): entry["api_key"]
        for url, entry in servers.items()
        if isinstance(entry, dict) and isinstance(entry.get("api_key"), str)
    }
    current = data.get("current")
    return StoredConfig(current=current if isinstance(current, str) else None, keys=keys)


def save_server(url: str, api_key: str) -> Path:
    """Store `api_key` for the server at `url` and make that server the current one."""
    stored = load()
    url = normalize_url(url)
    stored.keys[url] = api_key
    stored.current = url
    document = {
        "current": stored.current,
        "servers": {server: {"api_key": key} for server, key in sorted(stored.keys.items())},
    }
    path = config_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Written to a temporary file created 0600 (never readable by others, not even for a moment)
    # and renamed over the old one, so a crash cannot leave half a file.
    temporary = path.with_name(f".{FILE_NAME}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            json.dump(document, out, indent=2)
            out.write("\n")
        os.chmod(temporary, 0o600)  # exactly 0600, whatever the umask took away
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path
