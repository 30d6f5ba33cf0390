"""The tutorial way to accept a job, the peer `POST /v1/articles` is measured against (figure 3):
FastAPI, one SQLModel row inserted and committed, a Celery task sent by name, then 202. No
authentication, quotas, dedupe or idempotency.

It reads `DATABASE_URL`, `REDIS_URL` and `EVENHAND_QUEUE` as evenhand does, builds its engine with
evenhand's own settings (`kernel.db.make_engine`) and is served by the very `uvicorn.run(...)` call
`evenhand api` uses, so the two differ only in what a submit does.

    python -m bench.peer_app PORT
"""

import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated

import uvicorn
from celery import Celery
from fastapi import Depends, FastAPI
from sqlmodel import Field, Session, SQLModel

from kernel.db import make_engine

engine = make_engine(os.environ["DATABASE_URL"])
celery = Celery("peer", broker=os.environ["REDIS_URL"])
QUEUE = os.environ.get("EVENHAND_QUEUE", "celery") + "-peer"


class PeerArticle(SQLModel, table=True):
    __tablename__ = "peer_article"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    text: str
    title: str | None = None
    status: str = "queued"
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class ArticleIn(SQLModel):
    text: str = Field(min_length=1, max_length=200_000)
    title: str | None = None


def get_session() -> Iterator[Session]:
    with Session(engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    SQLModel.metadata.create_all(engine)
    yield


app = FastAPI(lifespan=lifespan)


@app.post("/articles", status_code=202)
def submit(article: ArticleIn, session: SessionDep) -> dict[str, str]:
    """Store the article, send its task by name, answer 202."""
    row = PeerArticle(text=article.text, title=article.title)
    job_id = str(row.id)  # read before the commit, which expires the row
    session.add(row)
    session.commit()
    celery.send_task("peer.summarize", args=[job_id], queue=QUEUE)
    return {"job_id": job_id, "status": "queued"}


if __name__ == "__main__":
    # the same call as evenhand.cli.api (one process, log_config=None, access_log=True), given
    # the app itself: importing this module a second time would declare its table twice
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        workers=1,
        log_config=None,
        access_log=True,
    )
