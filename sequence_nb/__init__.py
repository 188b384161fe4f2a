"""sequence_nb: clean the customer records of a Sequence billing account from a notebook."""

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
from sequence_nb.models import (
    Address,
    Customer,
    CustomerUpdate,
    ExternalId,
    LinkedService,
    TaxStatus,
)

__version__ = "0.1.0"

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "Address",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ConflictError",
    "Customer",
    "CustomerUpdate",
    "ExternalId",
    "InvalidBodyError",
    "LinkedService",
    "NotFoundError",
    "PaginationError",
    "PermissionDeniedError",
    "RateLimitError",
    "SequenceClient",
    "SequenceError",
    "ServerError",
    "TaxStatus",
    "UnexpectedResponseError",
    "__version__",
]
