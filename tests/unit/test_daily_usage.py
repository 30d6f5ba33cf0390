"""The daily quota's in-memory count on a real (SQLite) database: when a reading expires, one
request reads the database again while the others go on with the old reading."""

import threading
from typing import Any

import pytest
from sqlalchemy import event
from sqlmodel import Session

from api.limits import DailyUsage
from kernel import db
from kernel.config import Settings
from kernel.keys import create_key
from kernel.models import ApiKey
from testkit.stack import wait_until


@pytest.fixture
def owner(session: Session) -> ApiKey:
    key, _ = create_key(session, "quota")
    return key


def test_an_expired_reading_is_read_again_by_one_request_only(owner: ApiKey) -> None:
    engine = db.get_engine()
    reads: list[str] = []
    release = threading.Event()
    release.set()

    def count_reads(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "count(" in statement.lower():
            reads.append(statement)
            release.wait(10)  # hold the reader, so the others arrive while it reads

    event.listen(engine, "before_cursor_execute", count_reads)
    usage = DailyUsage(fresh_seconds=0.0)  # every reading expires at once
    settings = Settings()

    def submit() -> None:
        with Session(engine) as session:
            usage.enforce(session, owner, settings, new_jobs=1)

    try:
        submit()  # the first reading
        assert len(reads) == 1
        release.clear()
        threads = [threading.Thread(target=submit) for _ in range(6)]
        for thread in threads:
            thread.start()
        # all but the reader end while the reader still waits on the database
        wait_until(lambda: sum(t.is_alive() for t in threads) == 1, 10, what="5 submits")
        assert len(reads) == 2
        release.set()
        for thread in threads:
            thread.join(10)
        assert not any(thread.is_alive() for thread in threads)
        submit()  # the new reading expired too: read once more
        assert len(reads) == 3
    finally:
        release.set()
        event.remove(engine, "before_cursor_execute", count_reads)
