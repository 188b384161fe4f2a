"""sequence_nb: clean the customer records of a Sequence billing account from a notebook."""

from typing import TYPE_CHECKING, Any

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
    IncompleteFetchError,
    IncompleteFetchWarning,
    InvalidBodyError,
    InvalidIdError,
    NotFoundError,
    PaginationError,
    PermissionDeniedError,
    PlanError,
    RateLimitError,
    SequenceError,
    ServerError,
    UnexpectedResponseError,
)
from sequence_nb.export import ExportError, ReadBackError, export, read_export
from sequence_nb.frames import fetch_customers, frame_from_pages, to_frame, to_records
from sequence_nb.history import history
from sequence_nb.journal import Journal
from sequence_nb.models import (
    Address,
    Customer,
    CustomerUpdate,
    ExternalId,
    LinkedService,
    TaxStatus,
)
from sequence_nb.plan import (
    ChangePlan,
    FieldChange,
    PlanFileError,
    RowChange,
    plan_updates,
)
from sequence_nb.push import PushResult, PushStoppedError, RowResult, apply_plan
from sequence_nb.quality import PROBLEMS, check
from sequence_nb.retry import RetryPolicy
from sequence_nb.runs import resume, undo

if TYPE_CHECKING:
    from sequence_nb.editor import CustomerEditor

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """Import the widget stack (ipywidgets, ipydatagrid) only when the editor is used."""
    if name == "CustomerEditor":
        from sequence_nb.editor import CustomerEditor

        return CustomerEditor
    raise AttributeError(f"module 'sequence_nb' has no attribute {name!r}")


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
    "CustomerEditor",
    "CustomerUpdate",
    "ExportError",
    "ExternalId",
    "FieldChange",
    "IncompleteFetchError",
    "IncompleteFetchWarning",
    "InvalidBodyError",
    "InvalidIdError",
    "Journal",
    "LinkedService",
    "NotFoundError",
    "PaginationError",
    "PermissionDeniedError",
    "PlanError",
    "PlanFileError",
    "PushResult",
    "PushStoppedError",
    "RateLimitError",
    "ReadBackError",
    "RetryPolicy",
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
    "history",
    "plan_updates",
    "read_export",
    "resume",
    "to_frame",
    "to_records",
    "undo",
]
