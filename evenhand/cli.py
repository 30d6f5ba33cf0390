"""The `evenhand` command: run the pieces, manage keys, submit articles, summarize offline."""

import json
import secrets
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Column, Table

if TYPE_CHECKING:
    from evenhand.client import Client
    from kernel.config import Settings

# The commands import what they use inside their bodies: a module-level import of the worker (and so
# openai), uvicorn or SQLAlchemy would be paid by every command, `--help` and the client ones
# included. tests/unit/test_layers.py checks that the client commands never load them.

app = typer.Typer(
    help="evenhand: neutral summaries and argument maps of articles.", no_args_is_help=True
)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
console = Console(stderr=True)

FINISHED = {"succeeded", "failed", "canceled"}


@app.callback()
def _setup() -> None:
    from kernel.config import get_settings
    from kernel.logging import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)


# --- the pieces -----------------------------------------------------------------------------------


@app.command()
def api(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
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

    upgrade_to_head()
    console.print("database is at the latest migration")


# --- keys -----------------------------------------------------------------------------------------


@keys_app.command("create")
def keys_create(
    name: str,
    rate_limit: Annotated[
        str | None,
        typer.Option(help='Requests per window, e.g. "60/minute" (default: EVENHAND_RATE_LIMIT)'),
    ] = None,
    daily_jobs: Annotated[int | None, typer.Option(min=0, help="Articles per UTC day")] = None,
    daily_tokens: Annotated[int | None, typer.Option(min=0, help="LLM tokens per UTC day")] = None,
) -> None:
    """Create a key; it is printed once, alone on the last line, and stored only as a hash."""
    from limits import parse as parse_rate

    from kernel.db import session_scope
    from kernel.keys import create_key

    if rate_limit is not None:
        try:
            parse_rate(rate_limit)
        except ValueError:
            console.print(f'[red]not a rate limit: {rate_limit!r} (try "60/minute")[/red]')
            raise typer.Exit(2) from None
    with session_scope() as session:
        api_key, plaintext = create_key(
            session, name, rate_limit=rate_limit, daily_jobs=daily_jobs, daily_tokens=daily_tokens
        )
    console.print(
        f"created key {api_key.id} ({api_key.prefix}…) named {name!r}; it is shown only once:"
    )
    print(plaintext)


@keys_app.command("list")
def keys_list() -> None:
    """List keys by id and prefix (never the keys themselves)."""
    from kernel.db import session_scope
    from kernel.keys import list_keys

    table = Table("id", "name", "prefix", "limits", "created", "revoked")
    with session_scope() as session:
        for key in list_keys(session):
            table.add_row(
                str(key.id),
                key.name,
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
def keys_revoke(key_id: int) -> None:
    """Revoke a key by id: it stops working at once."""
    from kernel.db import session_scope
    from kernel.keys import revoke_key

    with session_scope() as session:
        if revoke_key(session, key_id) is None:
            console.print(f"[red]no key with id {key_id}[/red]")
            raise typer.Exit(1)
    console.print(f"key {key_id} revoked")


# --- client ---------------------------------------------------------------------------------------


def _client() -> "Client":
    from evenhand.client import ApiError, Client
    from kernel.config import get_settings

    settings = get_settings()
    key = settings.api_key.get_secret_value() if settings.api_key else None
    try:
        return Client(settings.api_url, key)
    except ApiError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def _submission(source: str) -> dict[str, Any]:
    if source.startswith(("http://", "https://")):
        return {"url": source}
    text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    if source.lower().endswith((".html", ".htm")):
        return {"html": text}
    return {"text": text, "title": None if source == "-" else Path(source).stem}


def render_result(job: dict[str, Any]) -> None:
    out = Console()
    if job["status"] == "failed":
        out.print(f"[red]failed[/red] {job['error']['code']}: {job['error']['message']}")
        return
    result = job.get("result")
    if not result:
        out.print(f"job {job['id']} is {job['status']}")
        return
    grounding = result["grounding"]
    out.print(
        f"[bold]{result['article_type']}[/bold] · {result['provider']} / {result['model']} · "
        f"quotes verified {grounding['verified']}/{grounding['quotes']}"
    )
    out.print(
        f"\n[bold]Thesis[/bold]\n{result['thesis']}\n\n[bold]Summary[/bold]\n{result['summary']}\n"
    )
    for number, point in enumerate(result["argument_points"], 1):
        out.print(f"[bold]{number}. {point['claim']}[/bold]  [dim]({point['speaker']})[/dim]")
        for premise in point["premises"]:
            out.print(f"   · {premise}")
        for ev in point["evidence"]:
            mark = "[green]✓[/green]" if ev["verified"] else "[yellow]?[/yellow]"
            out.print(f"   {mark} “{ev['quote']}”")


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
    timeout: Annotated[float, typer.Option(help="Seconds to wait at most with --wait")] = 300,
) -> None:
    """Submit an article to the API."""
    from evenhand.client import ApiError

    client = _client()
    try:
        accepted = client.submit(_submission(source))
        job = _wait_for(client, str(accepted["job_id"]), timeout) if wait else accepted
    except ApiError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    if as_json or not wait:
        print(json.dumps(job, indent=2, ensure_ascii=False))
    else:
        render_result(job)
    if wait and job["status"] != "succeeded":
        raise typer.Exit(1)


@app.command()
def status(
    job_id: uuid.UUID,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON instead of a rendering")
    ] = False,
) -> None:
    """Show a job's status and, once it succeeded, its result."""
    job = _call("job", job_id)
    if as_json:
        print(json.dumps(job, indent=2, ensure_ascii=False))
    else:
        render_result(job)


def _call(action: str, job_id: uuid.UUID | None = None, **kwargs: Any) -> dict[str, Any]:
    from evenhand.client import ApiError

    client = _client()
    try:
        method = getattr(client, action)
        return method(str(job_id), **kwargs) if job_id else method(**kwargs)
    except ApiError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


@app.command("list")
def list_jobs(
    status: Annotated[str | None, typer.Option(help="Only jobs in this status")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100, help="How many, newest first")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
) -> None:
    """List your jobs, newest first."""
    page = _call("jobs", status=status, limit=limit)
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
def cancel(job_id: uuid.UUID) -> None:
    """Cancel a queued or running job."""
    job = _call("cancel", job_id)
    Console().print(f"job {job['id']} is {job['status']}")


@app.command()
def retry(job_id: uuid.UUID) -> None:
    """Run a failed or canceled job again."""
    job = _call("retry", job_id)
    Console().print(f"job {job['id']} is {job['status']}")


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
) -> None:
    """Run every article in FOLDER through the configured provider and print quality figures."""
    from kernel.config import get_settings
    from worker.evaluation import evaluate_folder, total
    from worker.drafting import labels

    settings = get_settings()
    rows = evaluate_folder(folder, settings)
    if not rows:
        console.print(f"[red]no .txt or .html articles in {folder}[/red]")
        raise typer.Exit(1)
    rows.append(total(rows))
    if as_json:
        print(json.dumps([row.as_dict() for row in rows], indent=2))
        return
    label = labels(settings)
    table = Table(
        "article", "quotes verified", "loaded terms source → summary", "boilerplate lines",
        "tokens in / out", "LLM calls", "seconds", "error",
        title=f"evenhand eval · {label.provider} / {label.model} / {label.prompt_version}",
    )  # fmt: skip
    for row in rows:
        table.add_row(
            row.article,
            f"{row.verified}/{row.quotes}",
            f"{row.loaded_in_source} → {row.loaded_in_summary}",
            str(row.lines_removed),
            f"{row.prompt_tokens} / {row.completion_tokens}",
            str(row.llm_calls),
            f"{row.seconds:.2f}",
            row.error,
            end_section=row is rows[-2],
        )
    Console(width=160).print(table)


# --- the whole stack ------------------------------------------------------------------------------


@app.command()
def up(
    port: Annotated[int, typer.Option(help="API port")] = 8000,
    flower_port: Annotated[int, typer.Option(help="Flower port")] = 5555,
    flower_no_auth: Annotated[
        bool,
        typer.Option("--flower-no-auth", help="Run Flower without basic auth (local use only)"),
    ] = False,
) -> None:
    """Run everything on this machine: Redis (embedded unless REDIS_URL is set), migrations, API,
    worker and Flower. Ctrl-C stops every process it started."""
    from evenhand.embedded import (
        ProcessGroup,
        child_env,
        evenhand_command,
        free_port,
        redis_server_command,
        wait_for_port,
    )
    from kernel.config import get_settings
    from kernel.db import session_scope
    from kernel.keys import create_key
    from kernel.migrate import upgrade_to_head

    settings = get_settings()
    var = Path("var")
    var.mkdir(exist_ok=True)
    group = ProcessGroup()
    overrides: dict[str, str] = {"DATABASE_URL": settings.database_url}
    try:
        if settings.redis_url is None:
            redis_port = free_port()
            group.start("redis", redis_server_command(redis_port, var), child_env())
            if not wait_for_port(redis_port, 10):
                raise typer.Exit(f"embedded Redis did not start on port {redis_port}")
            overrides["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
        else:
            overrides["REDIS_URL"] = settings.redis_url
        env = child_env(**overrides)
        upgrade_to_head()
        with session_scope() as session:
            _key, plaintext = create_key(session, f"local-{time.strftime('%Y%m%d-%H%M%S')}")
        group.start("api", evenhand_command("api", "--port", str(port)), env)
        group.start("worker", evenhand_command("worker"), env)
        flower_auth = None if flower_no_auth else flower_credentials(settings)
        group.start(
            "flower",
            [sys.executable, "-m", "celery", "--app", "worker", "flower",
             f"--port={flower_port}", "--address=127.0.0.1",
             *([f"--basic-auth={flower_auth}"] if flower_auth else [])],
            env,
        )  # fmt: skip
        if not wait_for_port(port, 30):
            raise typer.Exit("the API did not start; see the log above")
        provider = settings.provider
        console.print(
            f"\n[bold]evenhand is up[/bold]\n"
            f"  API      http://127.0.0.1:{port}   (docs: http://127.0.0.1:{port}/docs)\n"
            f"  Flower   http://127.0.0.1:{flower_port}"
            f"   ({'no auth' if flower_auth is None else 'basic auth ' + flower_auth})\n"
            f"  Redis    {overrides['REDIS_URL']}{' (embedded)' if settings.redis_url is None else ''}\n"
            f"  Database {settings.database_url}\n"
            f"  LLM      {provider}"
            + (
                " (offline fallback: set OPENAI_API_KEY or OPENAI_BASE_URL for an LLM)"
                if provider == "extractive"
                else f" model {settings.model}"
            )
            + "\n  Ctrl-C stops everything. A local API key (shown once):"
        )
        print(plaintext, flush=True)
        while (exited := group.first_exited()) is None:
            time.sleep(0.5)
        console.print(f"[red]{exited} stopped; stopping the rest[/red]")
        raise typer.Exit(1)
    except KeyboardInterrupt:
        console.print("stopping…")
    finally:
        group.stop()


def flower_credentials(settings: "Settings") -> str:
    """EVENHAND_FLOWER_BASIC_AUTH, or fresh credentials for this run."""
    if settings.flower_basic_auth is not None:
        return settings.flower_basic_auth.get_secret_value()
    return f"admin:{secrets.token_urlsafe(12)}"


def main() -> None:
    app()


if __name__ == "__main__":
    main()
