"""The `evenhand` command: run the pieces, manage keys, submit articles, summarize offline."""

import json
import logging
import secrets
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

if TYPE_CHECKING:
    from sqlalchemy.exc import DBAPIError

    from evenhand.client import Client
    from evenhand.embedded import ProcessGroup
    from kernel.config import Settings

# The commands import what they use inside their bodies: a module-level import of the worker (and so
# openai), uvicorn or SQLAlchemy would be paid by every command, `--help` and the client ones
# included. tests/unit/test_layers.py checks that the client commands never load them.

# show_locals off: a traceback's local variables could hold keys or article text
app = typer.Typer(
    help="evenhand: neutral summaries and argument maps of articles.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
keys_app = typer.Typer(
    help="Manage API keys.", no_args_is_help=True, pretty_exceptions_show_locals=False
)
app.add_typer(keys_app, name="keys")
# soft_wrap: a message stays on one line whatever the width, for people and for grep
console = Console(stderr=True, soft_wrap=True)

FINISHED = {"succeeded", "failed", "canceled"}
# api_key's id and limit columns are INTEGER (32-bit on PostgreSQL): larger values cannot be stored
MAX_INTEGER_COLUMN = 2**31 - 1
MAX_KEY_NAME = 200  # api_key.name
MAX_RATE_LIMIT = 64  # api_key.rate_limit
BATCH_POLL_SECONDS = 2.0  # `evenhand batch --wait` reads the batch again this often


@app.callback()
def _setup() -> None:
    from kernel.config import get_settings
    from kernel.logging import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    # Alembic announces each of its plugins at import, on every command that touches the database
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


# --- the pieces -----------------------------------------------------------------------------------


@app.command()
def api(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=512, help="uvicorn worker processes")] = 1,
) -> None:
    """Run the HTTP API (uvicorn)."""
    import uvicorn

    uvicorn.run(
        "api.main:app", host=host, port=port, workers=workers, log_config=None, access_log=True
    )


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def worker(ctx: typer.Context) -> None:
    """Run a Celery worker; extra arguments go to `celery worker`."""
    from kernel.config import get_settings
    from worker import app as celery_app

    settings = get_settings()
    argv = [
        "worker",
        f"--pool={settings.worker_pool}",
        f"--concurrency={settings.worker_concurrency}",
        f"--queues={settings.queue}",
        f"--loglevel={settings.log_level}",
        *ctx.args,
    ]
    celery_app.worker_main(argv)


@app.command()
def migrate() -> None:
    """Bring the database schema to the latest migration."""
    from kernel.migrate import upgrade_to_head

    with database_errors():
        upgrade_to_head()
    console.print("database is at the latest migration")


@contextmanager
def database_errors() -> Iterator[None]:
    """Turn a database error into a message that says what to do, and exit 1 (no traceback)."""
    from sqlalchemy.exc import DBAPIError

    try:
        yield
    except DBAPIError as exc:
        console.print(f"[red]{escape(database_problem(exc))}[/red]")
        raise typer.Exit(1) from None


def database_problem(exc: "DBAPIError") -> str:
    from sqlalchemy.exc import OperationalError

    from kernel.config import get_settings

    url = _safe_database_url(get_settings())
    reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc).__name__
    # SQLite says so in words; PostgreSQL by SQLSTATE (undefined table, undefined column)
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate in ("42P01", "42703") or reason.startswith(("no such table", "no such column")):
        return (
            f"The database {url} is not at evenhand's latest schema ({reason}): "
            "run `evenhand migrate`."
        )
    if isinstance(exc, OperationalError):
        return (
            f"Cannot use the database {url} ({reason}): check DATABASE_URL and that the "
            "database server is running."
        )
    return f"The database {url} refused the command: {reason}"


def ensure_schema() -> None:
    """Migrate the embedded default database (a SQLite file of this user's), which nobody else
    would; any other database is migrated by its operator with `evenhand migrate`."""
    from kernel.config import default_database_url, get_settings

    if get_settings().database_url != default_database_url():
        return
    # a step the user did not ask for: Alembic's progress lines would only be noise here
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from kernel.migrate import upgrade_to_head

    upgrade_to_head()


# --- keys -----------------------------------------------------------------------------------------


@keys_app.command("create")
def keys_create(
    name: Annotated[
        str, typer.Argument(help=f"What the key is for (at most {MAX_KEY_NAME} chars)")
    ],
    rate_limit: Annotated[
        str | None,
        typer.Option(help='Requests per window, e.g. "60/minute" (default: EVENHAND_RATE_LIMIT)'),
    ] = None,
    daily_jobs: Annotated[
        int | None, typer.Option(min=0, max=MAX_INTEGER_COLUMN, help="Articles per UTC day")
    ] = None,
    daily_tokens: Annotated[
        int | None, typer.Option(min=0, max=MAX_INTEGER_COLUMN, help="LLM tokens per UTC day")
    ] = None,
) -> None:
    """Create a key; it is printed once, alone on the last line, and stored only as a hash."""
    from limits import parse as parse_rate

    from kernel.db import session_scope
    from kernel.keys import create_key

    if not name.strip() or len(name) > MAX_KEY_NAME:
        console.print(f"[red]a key's name must have 1 to {MAX_KEY_NAME} characters[/red]")
        raise typer.Exit(2)
    if rate_limit is not None:
        try:
            parse_rate(rate_limit)
            valid = len(rate_limit) <= MAX_RATE_LIMIT
        except ValueError:
            valid = False
        if not valid:
            console.print(
                f'[red]not a rate limit: {escape(repr(rate_limit))} (try "60/minute")[/red]'
            )
            raise typer.Exit(2)
    with database_errors():
        ensure_schema()
        with session_scope() as session:
            api_key, plaintext = create_key(
                session,
                name,
                rate_limit=rate_limit,
                daily_jobs=daily_jobs,
                daily_tokens=daily_tokens,
            )
    console.print(
        f"created key {api_key.id} ({api_key.prefix}…) named {escape(repr(name))}; "
        "it is shown only once:"
    )
    print(plaintext)


@keys_app.command("list")
def keys_list() -> None:
    """List keys by id and prefix (never the keys themselves)."""
    from kernel.db import session_scope
    from kernel.keys import list_keys

    table = Table("id", "name", "prefix", "limits", "created", "revoked")
    with database_errors():
        ensure_schema()
        with session_scope() as session:
            keys = list_keys(session)
    for key in keys:
        table.add_row(
            str(key.id),
            escape(key.name),
            key.prefix + "…",
            " ".join(
                f"{label}={value}"
                for label, value in (
                    ("rate", key.rate_limit),
                    ("jobs/day", key.daily_jobs),
                    ("tokens/day", key.daily_tokens),
                )
                if value is not None
            ),
            f"{key.created_at:%Y-%m-%d %H:%M}",
            f"{key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "",
        )
    Console().print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[
        int, typer.Argument(min=1, max=MAX_INTEGER_COLUMN, help="The id `keys list` shows")
    ],
) -> None:
    """Revoke a key by id: it stops working at once."""
    from kernel.db import session_scope
    from kernel.keys import revoke_key

    with database_errors():
        ensure_schema()
        with session_scope() as session:
            revoked = revoke_key(session, key_id)
    if revoked is None:
        console.print(f"[red]no key with id {key_id}[/red]")
        raise typer.Exit(1)
    console.print(f"key {key_id} revoked")


# --- client ---------------------------------------------------------------------------------------


ApiUrlOption = Annotated[
    str | None,
    typer.Option(
        "--api-url",
        help="The API server (default: EVENHAND_API_URL, else the one `evenhand up` or "
        "`evenhand login` saved, else http://127.0.0.1:8000)",
        show_default=False,
    ),
]
KeyOption = Annotated[
    str | None,
    typer.Option(
        "--key",
        help="API key (default: EVENHAND_API_KEY, else the one saved for the server); "
        "visible to other users in `ps`, so prefer `evenhand login`",
        show_default=False,
    ),
]


def _client(api_url: str | None = None, key: str | None = None) -> "Client":
    """A client of the server and key named by the options, else the environment (and `.env`),
    else the per-user config file that `evenhand up` and `evenhand login` write."""
    from evenhand import config_file
    from evenhand.client import Client
    from kernel.config import get_settings

    settings = get_settings()
    url = api_url or settings.api_url
    key = key or (settings.api_key.get_secret_value() if settings.api_key else None)
    if url is None or key is None:
        try:
            stored = config_file.load()
        except config_file.ConfigFileError as exc:
            console.print(f"[red]{escape(str(exc))}[/red]")
            raise typer.Exit(2) from None
        url = url or stored.current or config_file.DEFAULT_API_URL
        key = key or stored.key_for(url)
    if not key:
        console.print(
            f"[red]No API key for {escape(url)}: run 'evenhand up' (it saves its local key), "
            "or 'evenhand login --api-url URL' for another server, or set EVENHAND_API_KEY "
            "(create a key with 'evenhand keys create NAME').[/red]"
        )
        raise typer.Exit(2)
    return Client(url, key)


def _submission(source: str) -> dict[str, Any]:
    if source.startswith(("http://", "https://")):
        return {"url": source}
    text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    if source.lower().endswith((".html", ".htm")):
        return {"html": text}
    return {"text": text, "title": None if source == "-" else Path(source).stem}


def render_result(job: dict[str, Any]) -> None:
    out = Console()
    color = {"succeeded": "green", "failed": "red", "canceled": "yellow"}.get(job["status"], "bold")
    out.print(f"job {job['id']} [{color}]{job['status']}[/{color}]")
    if job["status"] == "failed":
        error = job["error"]
        out.print(f"[red]{escape(error['code'])}[/red]: {escape(error['message'])}")
        return
    result = job.get("result")
    if not result:
        return
    grounding = result["grounding"]
    out.print(
        f"[bold]{result['article_type']}[/bold] · {result['provider']} / {result['model']} · "
        f"quotes verified {grounding['verified']}/{grounding['quotes']}"
    )
    # escape(): model output may contain [brackets] that rich would take for markup
    out.print(
        f"\n[bold]Thesis[/bold]\n{escape(result['thesis'])}\n\n"
        f"[bold]Summary[/bold]\n{escape(result['summary'])}\n"
    )
    for number, point in enumerate(result["argument_points"], 1):
        out.print(
            f"[bold]{number}. {escape(point['claim'])}[/bold]  "
            f"[dim]({escape(point['speaker'])})[/dim]"
        )
        for premise in point["premises"]:
            out.print(f"   · {escape(premise)}")
        for ev in point["evidence"]:
            mark = "[green]✓[/green]" if ev["verified"] else "[yellow]?[/yellow]"
            out.print(f"   {mark} “{escape(ev['quote'])}”")


def _wait_for(client: "Client", job_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with console.status("queued") as status:
        while True:
            job = client.job(job_id, wait=min(20, max(1, deadline - time.monotonic())))
            status.update(job["status"])
            if job["status"] in FINISHED or time.monotonic() >= deadline:
                return job


@app.command()
def submit(
    source: Annotated[str, typer.Argument(help="A file, a URL, or - for standard input")],
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the result and show it")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON instead of a rendering")
    ] = False,
    timeout: Annotated[
        float, typer.Option(min=1, max=86400, help="Seconds to wait at most with --wait")
    ] = 300,
    api_url: ApiUrlOption = None,
    key: KeyOption = None,
) -> None:
    """Submit an article to the API."""
    from evenhand.client import ApiError

    client = _client(api_url, key)
    try:
        accepted = client.submit(_submission(source))
        job = _wait_for(client, str(accepted["job_id"]), timeout) if wait else accepted
    except ApiError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from None
    if as_json or not wait:
        print(json.dumps(job, indent=2, ensure_ascii=False))
    else:
        render_result(job)
    if wait and job["status"] != "succeeded":
        raise typer.Exit(1)


def render_batch(batch: dict[str, Any], jobs: dict[str, dict[str, Any]]) -> None:
    out = Console()
    counts = ", ".join(f"{n} {status}" for status, n in batch["counts"].items() if n)
    articles = f"{batch['total']} article{'s' if batch['total'] != 1 else ''}"
    out.print(f"batch {batch['id']} · {batch['mode']} · {articles}: {counts}")
    for round_ in batch.get("provider_batches", []):
        why = f": {round_['error']}" if round_.get("error") else ""
        out.print(
            f"  round {round_['round']} at the provider: {round_['status']}, "
            f"{round_['requests']} requests{escape(why)}"
        )
    for number, entry in enumerate(batch["jobs"], start=1):
        job = jobs.get(str(entry["job_id"]), entry)
        error = job.get("error")
        why = f": {error['code']}: {error['message']}" if error else ""
        out.print(f"  {number}. job {entry['job_id']} · {job['status']}{escape(why)}")


@app.command()
def batch(
    sources: Annotated[list[str], typer.Argument(help="Files or URLs, one job each")],
    provider_batch: Annotated[
        bool,
        typer.Option(
            "--provider-batch",
            help="Through the LLM provider's Batch API: about half the price, done within its "
            "completion window (hours) instead of minutes",
        ),
    ] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until every job ended")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON instead of a rendering")
    ] = False,
    timeout: Annotated[
        float, typer.Option(min=1, max=172800, help="Seconds to wait at most with --wait")
    ] = 3600,
    api_url: ApiUrlOption = None,
    key: KeyOption = None,
) -> None:
    """Submit several articles at once, one job each (all stored or none)."""
    from evenhand.client import ApiError

    if "-" in sources:
        console.print("[red]A batch reads files or URLs, not standard input.[/red]")
        raise typer.Exit(2)
    try:
        articles = [_submission(source) for source in sources]
    except OSError as exc:
        console.print(
            f"[red]Cannot read {escape(str(exc.filename))}: {escape(exc.strerror or '')}[/red]"
        )
        raise typer.Exit(2) from None
    body = {"mode": "provider_batch" if provider_batch else "live", "articles": articles}
    client = _client(api_url, key)
    try:
        found = client.submit_batch(body)
        if wait:
            deadline = time.monotonic() + timeout
            with console.status("waiting") as shown:
                # a batch has no long-poll: read it again every few seconds
                while not found["finished"] and time.monotonic() < deadline:
                    time.sleep(min(BATCH_POLL_SECONDS, max(0.0, deadline - time.monotonic())))
                    found = client.batch(str(found["id"]))
                    shown.update(", ".join(f"{n} {s}" for s, n in found["counts"].items() if n))
        jobs = (
            {str(e["job_id"]): client.job(str(e["job_id"])) for e in found["jobs"]} if wait else {}
        )
    except ApiError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from None
    if as_json:
        print(
            json.dumps(
                {**found, "jobs": list(jobs.values()) or found["jobs"]},
                indent=2,
                ensure_ascii=False,
            )
        )
    else:
        render_batch(found, jobs)
    if wait and (not found["finished"] or found["counts"]["succeeded"] != found["total"]):
        raise typer.Exit(1)


def render_story(story: dict[str, Any]) -> None:
    out = Console()
    color = {"succeeded": "green", "failed": "red"}.get(story["status"], "bold")
    out.print(f"story {story['id']} [{color}]{story['status']}[/{color}]")
    for article in story["articles"]:
        name = article["source"] or article["title"] or article["article_id"]
        error = article.get("error")
        why = f": {error['code']}: {error['message']}" if error else ""
        out.print(
            f"  {article['position'] + 1}. {escape(str(name))} · {article['status']}{escape(why)}"
        )
    if story.get("error"):
        out.print(
            f"[red]{escape(story['error']['code'])}[/red]: {escape(story['error']['message'])}"
        )
    result = story.get("result")
    if not result:
        return
    grounding = result["grounding"]
    out.print(
        f"[bold]{result['method']}[/bold] · {result['provider']} / {result['model']} · "
        f"quotes verified {grounding['verified']}/{grounding['quotes']}"
    )
    out.print(f"\n[bold]Synthesis[/bold]\n{escape(result['synthesis'])}\n")
    number = {o["article_id"]: i + 1 for i, o in enumerate(result["outlets"])}
    for cluster in result["clusters"]:
        outlets = ", ".join(str(number[a]) for a in cluster["article_ids"])
        out.print(
            f"[bold]{cluster['id']}. {escape(cluster['claim'])}[/bold]  [dim](articles {outlets})[/dim]"
        )
        for member in cluster["members"]:
            for quote in member["quotes"]:
                mark = "[green]✓[/green]" if quote["verified"] else "[yellow]?[/yellow]"
                out.print(f"   {mark} {number[member['article_id']]}: “{escape(quote['quote'])}”")
    for item in result["contradictions"]:
        first, second = item["clusters"]
        out.print(f"[red]contradiction[/red] {first} × {second}: {escape(item['explanation'])}")


@app.command()
def story(
    sources: Annotated[list[str], typer.Argument(help="Two or more files or URLs about one event")],
    title: Annotated[str | None, typer.Option(max=1000, help="The story's title")] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for the comparison and show it")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON instead of a rendering")
    ] = False,
    timeout: Annotated[
        float, typer.Option(min=1, max=86400, help="Seconds to wait at most with --wait")
    ] = 600,
    api_url: ApiUrlOption = None,
    key: KeyOption = None,
) -> None:
    """Submit several articles about one event and compare them: shared, unique and contradicting
    claims, and a synthesis that attributes each."""
    from evenhand.client import ApiError

    if len(sources) < 2:
        console.print("[red]Give at least two articles to compare.[/red]")
        raise typer.Exit(2)
    if "-" in sources:
        console.print("[red]A story reads files or URLs, not standard input.[/red]")
        raise typer.Exit(2)
    try:
        body = {"title": title, "articles": [_submission(source) for source in sources]}
    except OSError as exc:
        console.print(
            f"[red]Cannot read {escape(str(exc.filename))}: {escape(exc.strerror or '')}[/red]"
        )
        raise typer.Exit(2) from None
    client = _client(api_url, key)
    try:
        accepted = client.submit_story(body)
        story_id = str(accepted["story_id"])
        found = client.story(story_id)
        if wait:
            deadline = time.monotonic() + timeout
            with console.status(found["status"]) as shown:
                while found["status"] not in ("succeeded", "failed"):
                    if time.monotonic() >= deadline:
                        break
                    found = client.story(
                        story_id, wait=min(20, max(1, deadline - time.monotonic()))
                    )
                    shown.update(found["status"])
    except ApiError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from None
    if as_json or not wait:
        print(json.dumps(found if wait else accepted, indent=2, ensure_ascii=False))
    else:
        render_story(found)
    if wait and found["status"] != "succeeded":
        raise typer.Exit(1)


@app.command()
def status(
    job_id: uuid.UUID,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON instead of a rendering")
    ] = False,
    api_url: ApiUrlOption = None,
    key: KeyOption = None,
) -> None:
    """Show a job's id and status and, once it succeeded, its result."""
    job = _call(_client(api_url, key), "job", job_id)
    if as_json:
        print(json.dumps(job, indent=2, ensure_ascii=False))
    else:
        render_result(job)


def _call(
    client: "Client", action: str, job_id: uuid.UUID | None = None, **kwargs: Any
) -> dict[str, Any]:
    from evenhand.client import ApiError

    try:
        method = getattr(client, action)
        return method(str(job_id), **kwargs) if job_id else method(**kwargs)
    except ApiError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from None


@app.command("list")
def list_jobs(
    status: Annotated[str | None, typer.Option(help="Only jobs in this status")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100, help="How many, newest first")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
    api_url: ApiUrlOption = None,
    key: KeyOption = None,
) -> None:
    """List your jobs, newest first."""
    page = _call(_client(api_url, key), "jobs", status=status, limit=limit)
    if as_json:
        print(json.dumps(page, indent=2))
        return
    table = Table(
        Column("job", no_wrap=True, min_width=36), "status", "attempts", "created", "error"
    )
    for job in page["items"]:
        error = job.get("error") or {}
        table.add_row(
            job["id"],
            job["status"],
            str(job["attempts"]),
            job["created_at"][:19],
            error.get("code", ""),
        )
    Console().print(table)


@app.command()
def cancel(job_id: uuid.UUID, api_url: ApiUrlOption = None, key: KeyOption = None) -> None:
    """Cancel a queued or running job."""
    job = _call(_client(api_url, key), "cancel", job_id)
    Console().print(f"job {job['id']} is {job['status']}")


@app.command()
def retry(job_id: uuid.UUID, api_url: ApiUrlOption = None, key: KeyOption = None) -> None:
    """Run a failed or canceled job again."""
    job = _call(_client(api_url, key), "retry", job_id)
    Console().print(f"job {job['id']} is {job['status']}")


@app.command()
def login(
    api_url: Annotated[
        str | None,
        typer.Option(
            "--api-url",
            help="The API server (default: EVENHAND_API_URL, else http://127.0.0.1:8000)",
            show_default=False,
        ),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            help="The API key; without it, asked for (hidden) or read from standard input",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Check a key against an API server and save both for the client commands."""
    from evenhand import config_file
    from evenhand.client import ApiError, Client
    from kernel.config import get_settings

    url = config_file.normalize_url(
        api_url or get_settings().api_url or config_file.DEFAULT_API_URL
    )
    if not url.startswith(("http://", "https://")):
        console.print(f"[red]not an http(s) URL: {escape(url)}[/red]")
        raise typer.Exit(2)
    if key is None:
        key = (
            typer.prompt("API key", hide_input=True) if sys.stdin.isatty() else sys.stdin.readline()
        )
    key = key.strip()
    if not key:
        console.print("[red]no key given[/red]")
        raise typer.Exit(2)
    try:
        Client(url, key).check_key()
    except ApiError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]\nnothing saved")
        raise typer.Exit(1) from None
    try:
        path = config_file.save_server(url, key)
    except config_file.ConfigFileError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from None
    console.print(f"logged in to {escape(url)}; the key is saved in {path}")


# --- offline --------------------------------------------------------------------------------------


@app.command()
def summarize(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="A .txt or .html article")
    ],
    language: Annotated[str | None, typer.Option(help="Language code of the summary")] = None,
) -> None:
    """Run the pipeline in-process (no broker, no API) and print the result JSON."""
    from kernel.config import get_settings
    from worker.errors import PipelineError
    from worker.pipeline import summarize_article
    from worker.prepare import SourceArticle

    raw = file.read_text(encoding="utf-8")
    kind = "html" if file.suffix.lower() in (".html", ".htm") else "text"
    article = SourceArticle(input_kind=kind, raw_text=raw, title=file.stem, language=language)
    try:
        result = summarize_article(article, get_settings())
    except PipelineError as exc:
        console.print(f"[red]{exc.code}[/red]: {exc.message}")
        raise typer.Exit(1) from None
    print(result.model_dump_json(indent=2))


@app.command("eval")
def evaluate(
    folder: Annotated[
        Path, typer.Argument(exists=True, file_okay=False, help="A folder of .txt/.html articles")
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON rows instead of a table")
    ] = False,
    gold: Annotated[
        bool,
        typer.Option("--gold", help="Also score each article against its NAME.gold.json reference"),
    ] = False,
    save_drafts: Annotated[
        Path | None,
        typer.Option(
            file_okay=False,
            help="Also write each article's draft, before grounding and refine, to "
            "DIR/NAME.draft.json",
            show_default=False,
        ),
    ] = None,
    from_drafts: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            file_okay=False,
            help="Score the drafts saved in DIR (by --save-drafts) instead of calling the "
            "drafter; the stages after it (refine per EVENHAND_REFINE) run as they are now, "
            "the support check does not",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run every article in FOLDER through the configured provider and print quality figures."""
    from kernel.config import get_settings
    from worker.drafting import labels
    from worker.evaluation import DRAFT_SUFFIX, evaluate_folder, load_draft, total

    if save_drafts is not None and from_drafts is not None:
        console.print("[red]--save-drafts and --from-drafts do not go together[/red]")
        raise typer.Exit(2)
    settings = get_settings()
    rows = evaluate_folder(
        folder, settings, with_gold=gold, save_drafts=save_drafts, from_drafts=from_drafts
    )
    if not rows:
        console.print(f"[red]no .txt or .html articles in {folder}[/red]")
        raise typer.Exit(1)
    rows.append(total(rows))
    if as_json:
        print(json.dumps([row.as_dict() for row in rows], indent=2))
        return
    label = labels(settings)
    if from_drafts is not None:  # the drafter that wrote the saved drafts, not the configured one
        label = next(
            (saved.label for path in sorted(from_drafts.glob(f"*{DRAFT_SUFFIX}"))
             if (saved := load_draft(path)).draft is not None),
            label,
        )  # fmt: skip
    table = Table(
        "article", "quotes verified", "support ✓ / ~ / ✗", "loaded terms source → summary",
        "boilerplate lines", "tokens in / out", "LLM calls", "seconds", "error",
        title=f"evenhand eval · {label.provider} / {label.model} / {label.prompt_version}",
    )  # fmt: skip
    for row in rows:
        table.add_row(
            row.article,
            f"{row.verified}/{row.quotes}",
            f"{row.supports} / {row.partial} / {row.unrelated}",
            f"{row.loaded_in_source} → {row.loaded_in_summary}",
            str(row.lines_removed),
            f"{row.prompt_tokens} / {row.completion_tokens}",
            str(row.llm_calls),
            f"{row.seconds:.2f}",
            row.error,
            end_section=row is rows[-2],
        )
    Console(width=160).print(table)
    if gold:
        _print_gold_table(rows, f"{label.provider} / {label.model} / {label.prompt_version}")


def _print_gold_table(rows: list[Any], title: str) -> None:
    """Per article and overall: the scores against the reference files (`eval --gold`)."""

    def pct(value: float | None) -> str:
        return "–" if value is None else f"{value:.0%}"

    table = Table(
        "article", "point recall", "point precision", "duplicates", "speakers", "thesis",
        "loaded unattributed", "quotes verified", "boilerplate removed", "sentences kept",
        title=f"evenhand eval --gold · {title}",
    )  # fmt: skip
    scored = [row for row in rows if row.gold is not None]
    table.columns[0].no_wrap = True  # the other columns wrap their headers instead
    for row in scored:
        g = row.gold
        table.add_row(
            row.article,
            f"{g.points_matched}/{g.points_reference}",
            f"{g.points_matched}/{g.points_predicted}",
            str(g.points_duplicated),
            f"{g.speakers_right}/{g.points_matched}",
            f"{g.thesis_matched}/{g.theses}" if g.theses else row.error or "–",
            str(g.loaded_unattributed),
            f"{row.verified}/{row.quotes}",
            f"{g.boilerplate_removed}/{g.boilerplate_lines}",
            f"{g.kept_found}/{g.kept_sentences}",
            end_section=row is scored[-2] if len(scored) > 1 else False,
        )
    if scored and scored[-1].article == "overall":
        r = scored[-1].gold.rates()
        table.add_row(
            "rates",
            pct(r["point_recall"]), pct(r["point_precision"]), "", pct(r["speaker_accuracy"]),
            pct(r["thesis_match"]), "", "", pct(r["boilerplate_removal"]), pct(r["sentence_retention"]),
        )  # fmt: skip
    Console(width=160).print(table)
    if scored and scored[-1].gold is not None:
        recall = pct(scored[-1].gold.rates()["lexicon_recall"])
        print(f"neutrality lexicon recall on the references' loaded terms: {recall}")


# --- the whole stack ------------------------------------------------------------------------------


@app.command()
def up(
    port: Annotated[int, typer.Option(min=1, max=65535, help="API port")] = 8000,
    flower_port: Annotated[int, typer.Option(min=1, max=65535, help="Flower port")] = 5555,
    worker_metrics_port: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=65535,
            help="The worker's /metrics port (default: EVENHAND_WORKER_METRICS_PORT; 0: off)",
            show_default=False,
        ),
    ] = None,
    flower_no_auth: Annotated[
        bool,
        typer.Option("--flower-no-auth", help="Run Flower without basic auth (local use only)"),
    ] = False,
    model: Annotated[
        Path | None,
        typer.Option(
            help="A GGUF model file to serve with llama.cpp's server for the workers "
            "(default: EVENHAND_LOCAL_MODEL; needs evenhand[local])",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run everything on this machine: Redis (embedded unless REDIS_URL is set), migrations, API,
    worker and Flower, and with --model a local LLM. Ctrl-C stops every process it started."""
    import os
    import socket

    from evenhand import config_file
    from evenhand.embedded import (
        Listener,
        ProcessGroup,
        StartupError,
        api_problem,
        child_env,
        evenhand_command,
        flower_command,
        flower_env,
        free_port,
        http_problem,
        port_problem,
        redis_server_command,
        wait_for_port,
        worker_problem,
    )
    from kernel.celery_app import create_celery_app
    from kernel.config import data_dir, get_settings
    from kernel.db import session_scope
    from kernel.keys import create_key, find_active_key
    from kernel.migrate import upgrade_to_head

    settings = get_settings()
    metrics_port = (
        settings.worker_metrics_port if worker_metrics_port is None else worker_metrics_port
    )
    model = model or settings.local_model
    if model is not None and (problem := local_model_problem(model)):
        console.print(f"[red]{escape(problem)}[/red]")
        raise typer.Exit(2)
    listeners = [
        Listener("the API", port, "--port"),
        Listener("Flower", flower_port, "--flower-port"),
    ]
    if metrics_port:
        listeners.append(Listener("the worker's metrics", metrics_port, "--worker-metrics-port"))
    # Before starting anything: a busy port would otherwise surface as a child dying later on.
    if problem := port_problem(listeners):
        console.print(f"[red]{escape(problem)}[/red]")
        raise typer.Exit(2)
    try:
        stored = config_file.load()
    except config_file.ConfigFileError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from None
    api_url = f"http://127.0.0.1:{port}"
    group = ProcessGroup()
    # `kill`, systemd and container runtimes stop with SIGTERM: stop the children as Ctrl-C does
    # (Python's default would exit at once and leave them running)
    signal.signal(signal.SIGTERM, _interrupt)
    # a shell script's `evenhand up &` starts it with SIGINT ignored: Ctrl-C (or `kill -INT`)
    # must stop it all the same
    signal.signal(signal.SIGINT, _interrupt)
    overrides = {
        "DATABASE_URL": settings.database_url,
        # every listener of `up` on loopback only
        "EVENHAND_WORKER_METRICS_HOST": "127.0.0.1",
        "EVENHAND_WORKER_METRICS_PORT": str(metrics_port),
    }
    deadline = time.monotonic() + 120
    try:
        if settings.redis_url is None:
            redis_dir = data_dir() / "redis"
            redis_dir.mkdir(parents=True, exist_ok=True)
            redis_port = free_port()
            group.start("redis", redis_server_command(redis_port, redis_dir), child_env())
            if not wait_for_port(redis_port, 10):
                raise StartupError(f"the embedded Redis did not start on port {redis_port}")
            redis_url = f"redis://127.0.0.1:{redis_port}/0"
        else:
            redis_url = settings.redis_url
        overrides["REDIS_URL"] = redis_url
        if model is not None:
            overrides |= start_local_model(group, model, settings, deadline)
        env = child_env(**overrides)
        with database_errors():
            upgrade_to_head()
            with session_scope() as session:
                # the key saved by an earlier run, while this database still knows it
                saved = [stored.key_for(api_url), *stored.keys.values()]
                plaintext = next((k for k in saved if k and find_active_key(session, k)), None)
                reused = plaintext is not None
                if plaintext is None:
                    _row, plaintext = create_key(session, f"local-{time.strftime('%Y%m%d-%H%M%S')}")
        nodename = f"evenhand-{os.getpid()}@{socket.gethostname()}"
        group.start("api", evenhand_command("api", "--host", "127.0.0.1", "--port", str(port)), env)
        group.start("worker", evenhand_command("worker", f"--hostname={nodename}"), env)
        probe = create_celery_app(settings.model_copy(update={"redis_url": redis_url}))
        try:
            # Flower starts once the worker answers, so its first inspection of the workers gets
            # replies rather than a burst of "Inspect method ... failed" warnings.
            group.wait_ready("the worker", lambda: worker_problem(probe, nodename), deadline)
        finally:
            probe.close()
        flower_auth = None if flower_no_auth else flower_credentials(settings)
        group.start("flower", flower_command(flower_port), flower_env(env, flower_auth))
        group.wait_ready("the API", lambda: api_problem(port), deadline)
        group.wait_ready("Flower", lambda: http_problem(flower_port), deadline)
        config_path = config_file.save_server(api_url, plaintext)
        provider = settings.provider
        console.print(
            f"\n[bold]evenhand is up[/bold]\n"
            f"  API      {api_url}   (docs: {api_url}/docs)\n"
            f"  Flower   http://127.0.0.1:{flower_port}"
            f"   ({'no auth' if flower_auth is None else 'basic auth ' + escape(flower_auth)})\n"
            f"  Worker   {nodename}"
            + (f"   (metrics: http://127.0.0.1:{metrics_port}/metrics)" if metrics_port else "")
            + f"\n  Redis    {redis_url}{' (embedded)' if settings.redis_url is None else ''}\n"
            f"  Database {escape(_safe_database_url(settings))}\n"
            + (
                f"  LLM      llama.cpp server {overrides['OPENAI_BASE_URL']}"
                f" model {escape(overrides['EVENHAND_MODEL'])} ({escape(str(model))})"
                if model is not None
                else f"  LLM      {provider}"
                + (
                    " (offline fallback: set OPENAI_API_KEY or OPENAI_BASE_URL for an LLM,"
                    " or run a GGUF model with --model)"
                    if provider == "extractive"
                    else f" model {escape(settings.model)}"
                )
            )
            + "\n  Ctrl-C stops everything. The local API key"
            + (" (the same as last time)" if reused else "")
            + f", saved in {config_path} for `evenhand submit` and the other client commands:",
            soft_wrap=True,  # URLs and paths whole, for copying, whatever the terminal's width
        )
        print(plaintext, flush=True)
        while (exited := group.first_exited()) is None:
            time.sleep(0.5)
        console.print(f"[red]{exited} stopped; stopping the rest[/red]")
        raise typer.Exit(1)
    except StartupError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        console.print("stopping…")
    finally:
        group.stop()


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _safe_database_url(settings: "Settings") -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.database_url).render_as_string(hide_password=True)


def local_model_problem(model: Path) -> str | None:
    """What stops `up --model` from serving this file, in words; None when nothing does."""
    import importlib.util

    if not model.is_file():
        return f"No model file at {model}: give --model the path of a .gguf file."
    with model.open("rb") as head:
        if head.read(4) != b"GGUF":
            return f"{model} is not a GGUF model file (llama.cpp's format)."
    if importlib.util.find_spec("xllamacpp") is None:
        return "--model needs llama.cpp's server: pip install 'evenhand[local]'."
    return None


def start_local_model(
    group: "ProcessGroup", model: Path, settings: "Settings", deadline: float
) -> dict[str, str]:
    """llama.cpp's server on `model` as one of up's children, once it has loaded the model; the
    settings that point the workers at it."""
    import sys

    from evenhand.embedded import child_env, free_port
    from evenhand.local_llm import health_problem, model_name

    port = free_port()
    group.start(
        "the local model server",
        [sys.executable, "-m", "evenhand.local_llm", "--model", str(model), "--port", str(port),
         "--slots", str(settings.local_model_slots),
         "--context", str(settings.local_model_context)],
        child_env(),
    )  # fmt: skip
    group.wait_ready("the local model server", lambda: health_problem(port), deadline)
    return {
        "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1",
        "OPENAI_API_KEY": "local",  # the server asks for none; the SDK wants one
        "EVENHAND_PROVIDER": "openai",
        "EVENHAND_MODEL": model_name(model),
        # one job per slot: more would wait in the server's queue on their request's timeout
        "EVENHAND_WORKER_CONCURRENCY": str(settings.local_model_slots),
        # a model on this machine's CPU answers in minutes, not seconds
        "EVENHAND_LLM_TIMEOUT": str(max(settings.llm_timeout, 600)),
        "EVENHAND_JOB_TIME_LIMIT": str(max(settings.job_time_limit, 1800)),
    }


def flower_credentials(settings: "Settings") -> str:
    """EVENHAND_FLOWER_BASIC_AUTH, or fresh credentials for this run."""
    if settings.flower_basic_auth is not None:
        return settings.flower_basic_auth.get_secret_value()
    return f"admin:{secrets.token_urlsafe(12)}"


def main() -> None:
    app()


if __name__ == "__main__":
    main()
