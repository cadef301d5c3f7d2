"""One exception family for everything the engine can refuse or meet.

Users see these messages as the interface (ComfyUI shows them in an error dialog, the CLI prints them),
so every message says what happened, names the run when there is one, and says what to do next.
Callers that need to branch catch the typed subclasses instead of parsing text. No message ever holds
the API key: code that builds one uses `config.mask_key`.
"""

from __future__ import annotations

from collections.abc import Sequence


class RunflowError(Exception):
    """Base of every error raised by runflow_api."""

    def __init__(
        self,
        message: str,
        *,
        run_id: str | None = None,
        status_code: int | None = None,
        code: str | None = None,
    ) -> None:
        if run_id and run_id not in message:
            message = f"{message} (run {run_id})"
        super().__init__(message)
        self.message = message
        self.run_id = run_id
        self.status_code = status_code
        self.code = code

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"

    def extend(self, text: str) -> None:
        """Append a sentence (e.g. how many attempts were made) to the user-facing message."""
        self.message = f"{self.message} {text}"
        self.args = (self.message,)


class InputRejected(RunflowError):
    """Bad input refused before any request was sent, so nothing was spent."""


class MissingApiKey(InputRejected):
    """No API key anywhere the engine looks."""


class SpendLimitExceeded(RunflowError):
    """The spend guard refused to start runs whose cost would pass the configured limit."""

    def __init__(self, message: str, *, runs: int, cost: str, limit: str) -> None:
        super().__init__(message)
        self.runs = runs
        self.cost = cost
        self.limit = limit


class TeamBudgetExceeded(SpendLimitExceeded):
    """The fleet's daily team budget would be passed: refused before the create, so nothing was spent."""


class APIError(RunflowError):
    """The service answered with an error status."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str | None = None,
        run_id: str | None = None,
        details: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__(message, run_id=run_id, status_code=status_code, code=code)
        self.details = list(details)


class BadRequest(APIError):
    """400: the request was malformed."""


class AuthenticationFailed(APIError):
    """401: the key is missing, invalid or revoked."""


class InsufficientCredit(APIError):
    """402: the balance is used up."""


class PermissionDenied(APIError):
    """403: the key lacks a scope, or the account is not verified."""


class SignedUrlExpired(PermissionDenied):
    """403 from a presigned upload or download URL: it expired; mint a fresh one and try again."""


class NotFound(APIError):
    """404: the run or asset does not exist (for this key)."""


class Conflict(APIError):
    """409: typically the same Idempotency-Key with a different body."""


class ValidationFailed(APIError):
    """422: the service rejected a field; `details` holds (location, message) pairs."""

    @property
    def field_errors(self) -> list[tuple[str, str]]:
        return self.details


class RateLimited(APIError):
    """429: too many requests; `retry_after` is the server's hint in seconds, if it gave one."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class ServiceUnavailable(APIError):
    """5xx: the service or the model is temporarily unavailable."""


class NetworkError(RunflowError):
    """The service could not be reached: DNS, refused or reset connection, TLS. A local-side problem."""


class RunflowTimeout(RunflowError):
    """A request, or the overall wait for a run, took longer than allowed."""


class RunFailed(RunflowError):
    """The run ended without a usable result (failed, canceled, errored, or succeeded with no output)."""

    def __init__(
        self,
        message: str,
        *,
        run_id: str | None,
        status: str,
        failure_code: str | None = None,
        failure_message: str | None = None,
        failure_stage: str | None = None,
    ) -> None:
        super().__init__(message, run_id=run_id, code=failure_code)
        self.status = status
        self.failure_code = failure_code
        self.failure_message = failure_message
        self.failure_stage = failure_stage


class OutputRejected(RunflowError):
    """The run's output could not be downloaded or decoded safely."""


class RunflowCancelled(RunflowError):
    """The caller cancelled. Runs already created keep running at Runflow and stay in the journal,
    so the next call with the same inputs collects them instead of paying again."""

    def __init__(self, message: str, *, run_ids: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.run_ids = list(run_ids)


STATUS_ERRORS: dict[int, type[APIError]] = {
    400: BadRequest,
    401: AuthenticationFailed,
    402: InsufficientCredit,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    422: ValidationFailed,
    429: RateLimited,
}


def error_class_for_status(status_code: int) -> type[APIError]:
    """Map an HTTP status to the typed error; unknown 4xx stay APIError, every 5xx is ServiceUnavailable."""
    if status_code >= 500:
        return ServiceUnavailable
    return STATUS_ERRORS.get(status_code, APIError)
