"""A small client of the HTTP API, used by `evenhand submit`, `batch`, `story` and `status`."""

from typing import Any

import httpx


class ApiError(Exception):
    """The API could not be reached or answered with an error; `str()` says what to do."""


class Client:
    def __init__(self, base_url: str, api_key: str, timeout: float = 40.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout
        )

    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ApiError(
                f"Cannot reach the evenhand API at {self.base_url} ({type(exc).__name__}); "
                "is it running ('evenhand up')? Pass --api-url or set EVENHAND_API_URL if it is "
                "elsewhere."
            ) from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            if response.status_code == 401:
                detail = (
                    f"{detail} Check the key (--key, EVENHAND_API_KEY, or the one saved by "
                    "'evenhand up' / 'evenhand login')."
                )
            raise ApiError(f"{response.status_code}: {detail}")
        return response.json()

    def check_key(self) -> None:
        """Raise ApiError unless the server accepts the key (one cheap authenticated read)."""
        self.jobs(limit=1)

    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._request("POST", "/v1/articles", json=body)

    def job(self, job_id: str, wait: float = 0) -> dict[str, Any]:
        params = {"wait": wait} if wait else None
        return self._request("GET", f"/v1/jobs/{job_id}", params=params)

    def jobs(
        self, status: str | None = None, limit: int = 20, cursor: str | None = None
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if status:
            params["status"] = status
        if cursor:
            params["cursor"] = cursor
        return self._request("GET", "/v1/jobs", params=params)

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._request("DELETE", f"/v1/jobs/{job_id}")

    def retry(self, job_id: str) -> dict[str, Any]:
        return self._request("POST", f"/v1/jobs/{job_id}/retry")

    def submit_batch(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._request("POST", "/v1/batches", json=body)

    def batch(self, batch_id: str) -> dict[str, Any]:
        return self._request("GET", f"/v1/batches/{batch_id}")

    def submit_story(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._request("POST", "/v1/stories", json=body)

    def story(self, story_id: str, wait: float = 0) -> dict[str, Any]:
        params = {"wait": wait} if wait else None
        return self._request("GET", f"/v1/stories/{story_id}", params=params)

    def stories(self, limit: int = 20, cursor: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        return self._request("GET", "/v1/stories", params=params)
