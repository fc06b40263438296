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


class LeadNotFound(DomainError):
    code = "lead_not_found"


class MergeNotAllowed(DomainError):
    code = "merge_not_allowed"
