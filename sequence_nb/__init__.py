"""sequence_nb: clean the customer records of a Sequence billing account from a notebook."""

from typing import TYPE_CHECKING, Any

from sequence_nb import clean
from sequence_nb.client import SequenceClient
from sequence_nb.contacts import ContactFetchError, contacts_frame, fetch_contacts
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
    UnsupportedOperationError,
)
from sequence_nb.export import ExportError, ReadBackError, export, read_export
from sequence_nb.fields import SEED, V2024_07_30, ApiVersion, UnknownApiVersionError, api_version
from sequence_nb.frames import fetch_customers, frame_from_pages, to_frame, to_records
from sequence_nb.history import history
from sequence_nb.journal import Journal
from sequence_nb.models import (
    Address,
    CreateOrUpdateCustomerRequest,
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
    plan_archive,
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
    "SEED",
    "V2024_07_30",
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "Address",
    "ApiVersion",
    "AuthenticationError",
    "BadRequestError",
    "ChangePlan",
    "ConfigurationError",
    "ConflictError",
    "ContactFetchError",
    "CreateOrUpdateCustomerRequest",
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
    "UnknownApiVersionError",
    "UnsupportedOperationError",
    "__version__",
    "api_version",
    "apply_plan",
    "check",
    "clean",
    "contacts_frame",
    "export",
    "fetch_contacts",
    "fetch_customers",
    "frame_from_pages",
    "history",
    "plan_archive",
    "plan_updates",
    "read_export",
    "resume",
    "to_frame",
    "to_records",
    "undo",
]
