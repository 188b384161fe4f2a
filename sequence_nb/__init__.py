"""sequence_nb: clean the customer records of a Sequence billing account from a notebook."""

from sequence_nb import clean
from sequence_nb.client import SequenceClient
from sequence_nb.errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    InvalidBodyError,
    NotFoundError,
    PaginationError,
    PermissionDeniedError,
    RateLimitError,
    SequenceError,
    ServerError,
    UnexpectedResponseError,
)
from sequence_nb.export import ExportError, export
from sequence_nb.frames import fetch_customers, frame_from_pages, to_frame, to_records
from sequence_nb.journal import Journal
from sequence_nb.models import (
    Address,
    Customer,
    CustomerUpdate,
    ExternalId,
    LinkedService,
    TaxStatus,
)
from sequence_nb.plan import ChangePlan, FieldChange, PlanError, RowChange, plan_updates
from sequence_nb.push import PushResult, RowResult, apply_plan, resume, undo
from sequence_nb.quality import PROBLEMS, check

__version__ = "0.1.0"

__all__ = [
    "PROBLEMS",
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "Address",
    "AuthenticationError",
    "BadRequestError",
    "ChangePlan",
    "ConfigurationError",
    "ConflictError",
    "Customer",
    "CustomerUpdate",
    "ExportError",
    "ExternalId",
    "FieldChange",
    "InvalidBodyError",
    "Journal",
    "LinkedService",
    "NotFoundError",
    "PaginationError",
    "PermissionDeniedError",
    "PlanError",
    "PushResult",
    "RateLimitError",
    "RowChange",
    "RowResult",
    "SequenceClient",
    "SequenceError",
    "ServerError",
    "TaxStatus",
    "UnexpectedResponseError",
    "__version__",
    "apply_plan",
    "check",
    "clean",
    "export",
    "fetch_customers",
    "frame_from_pages",
    "plan_updates",
    "resume",
    "to_frame",
    "to_records",
    "undo",
]
