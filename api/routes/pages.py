"""The web pages: submit an article or a URL, or several as a story, watch them live, read and
reopen results (api/static/)."""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
def index() -> FileResponse:
    """The single-article page of the web interface."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")


@router.get("/story")
def story() -> FileResponse:
    """The story page: several articles about one event compared."""
    return FileResponse(STATIC_DIR / "story.html", media_type="text/html")
