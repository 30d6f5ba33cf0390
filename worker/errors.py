"""The one exception the pipeline raises to end a job as failed, with a stable code."""


class PipelineError(Exception):
    """A job cannot succeed: `code` is stable (clients branch on it), `message` is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
