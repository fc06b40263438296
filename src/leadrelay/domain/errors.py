"""Domain errors: a stable code and a clear message, no transport details (no HTTP status)."""


class DomainError(Exception):
    code = "domain_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnknownStage(DomainError):
    code = "unknown_stage"


class MoveNotAllowed(DomainError):
    code = "move_not_allowed"


class ReasonRequired(DomainError):
    code = "reason_required"


class InvalidField(DomainError):
    code = "invalid_field"


class MergeNotAllowed(DomainError):
    code = "merge_not_allowed"


class NotFound(DomainError):
    code = "not_found"


class LeadNotFound(NotFound):
    code = "lead_not_found"


class AccountNotFound(NotFound):
    code = "account_not_found"


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"


class Unauthenticated(DomainError):
    """No credentials, or credentials that are not (or no longer) valid."""

    code = "unauthorized"


class PermissionDenied(DomainError):
    """Valid credentials without the right to do this."""

    code = "forbidden"


class InvalidInput(DomainError):
    """Input that cannot be read: the code says how (invalid_json, too_large, invalid_message, ...)."""

    def __init__(self, message: str, code: str = "invalid_input") -> None:
        super().__init__(message)
        self.code = code


class Overloaded(DomainError):
    """Too much work waiting: try again a little later."""

    code = "overloaded"


class DealNotFound(NotFound):
    code = "deal_not_found"


class DealClosed(DomainError):
    code = "deal_closed"


class WebhookNotFound(NotFound):
    code = "webhook_not_found"


class TaskNotFound(NotFound):
    code = "task_not_found"


class OutboxItemNotFound(NotFound):
    code = "outbox_item_not_found"


class InvalidTouch(DomainError):
    code = "invalid_touch"


class UserNotFound(NotFound):
    code = "user_not_found"


class TooManyAttempts(DomainError):
    """Too many failed logins for this email or from this address: wait before trying again."""

    code = "too_many_attempts"
