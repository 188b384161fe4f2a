"""A local Sequence-compatible HTTP server for demos, notebooks and tests.

>>> from sequence_nb import sandbox
>>> with sandbox.start(customers=200) as sb:      # doctest: +SKIP
...     client = sb.client()

The library never imports this package; it plays the remote API, with its own
validation rules, paging, idempotency, rate limit and fault injection.
"""

from sequence_nb.sandbox.app import create_app
from sequence_nb.sandbox.data import (
    PROBLEM_CODES,
    PROBLEM_CODES_2024,
    PlantedProblem,
    generate_customers,
    generate_dataset,
)
from sequence_nb.sandbox.server import Sandbox, SandboxOptions, build_state, serve, start
from sequence_nb.sandbox.state import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Faults, SandboxState
from sequence_nb.sandbox.stats import SandboxStats

__all__ = [
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "PROBLEM_CODES",
    "PROBLEM_CODES_2024",
    "Faults",
    "PlantedProblem",
    "Sandbox",
    "SandboxOptions",
    "SandboxState",
    "SandboxStats",
    "build_state",
    "create_app",
    "generate_customers",
    "generate_dataset",
    "serve",
    "start",
]
