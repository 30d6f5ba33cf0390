"""The baseline of figure 3: a bare FastAPI app, served exactly as `evenhand api` serves its own."""

import sys

import uvicorn
from fastapi import FastAPI

app = FastAPI()


@app.get("/ping")
def ping() -> dict[str, str]:
    return {"status": "ok", "id": "00000000-0000-0000-0000-000000000000"}


if __name__ == "__main__":
    # the same call as evenhand.cli.api: one process, log_config=None, access_log=True
    uvicorn.run(
        "bench.bare_app:app",
        host="127.0.0.1",
        port=int(sys.argv[1]),
        workers=1,
        log_config=None,
        access_log=True,
    )
