"""The web page: submit an article or a URL, watch it live, read and reopen results (api/static/)."""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
def index() -> FileResponse:
    """The single page of the web interface."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")
