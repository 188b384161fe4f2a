"""The 2024-07-30 write path as an attacker tried it (contacts, custom properties,
archive, undo, resume), over sockets.

The first part holds the holes the attack found on 450a5ad, each with what happened
and what must; the second part records attacks that held.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import polars as pl
import pytest

from sequence_nb.contacts import ContactFetchError, fetch_contacts
from sequence_nb.errors import PlanError, SequenceError
from sequence_nb.frames import to_frame
from sequence_nb.journal import Journal
from sequence_nb.plan import ChangePlan, PlanFileError, plan_archive, plan_updates
from sequence_nb.runs import resume, undo
from sequence_nb.sandbox import Sandbox
from tests.conftest import SandboxFactory, contract_client

V = "2024-07-30"
_FAST = {"rate_limit_per_minute": None, "max_retries": 0, "retry_initial_delay": 0.01}


def _sandbox(make_sandbox: SandboxFactory) -> Sandbox:
    return make_sandbox(customers=40, seed=11, api_version=V)


def _live(server: Sandbox, where: Any = None, *, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    planted = {p.id for p in server.planted}
    for record in server.records():
        usable = "archivedAt" not in record and record["id"] not in planted
        if usable and record["id"] not in skip and (where is None or where(record)):
            return record
    raise AssertionError("no such customer")


def _frame(*records: dict[str, Any]) -> pl.DataFrame:
    """Customers as a list page gives them (no contacts)."""
    return to_frame(
        [{k: v for k, v in r.items() if k != "contacts"} for r in records], api_version=V
    )


def _set(frame: pl.DataFrame, column: str, value: Any) -> pl.DataFrame:
    return frame.with_columns(pl.lit(value, dtype=pl.String).alias(column))


class _DiesAfterSending(httpx.BaseTransport):
    """Forwards every request; for those ``method`` names, the answer is lost to a
    non-API error after the server applied the request (a bug, a killed worker)."""

    def __init__(self, method: str) -> None:
        self.inner = httpx.HTTPTransport()
        self.method = method

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = self.inner.handle_request(request)
        answer.read()
        if request.method == self.method:
            raise RuntimeError("the worker died after sending (test fault)")
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)


class _RefusesArchive(httpx.BaseTransport):
    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/archive"):
            return httpx.Response(422, json={"message": "cannot archive (test)"})
        return self.inner.handle_request(request)


class _GetWithoutContacts(httpx.BaseTransport):
    """``GET /customers/{id}`` answered without ``contacts`` (as a list page's record)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = self.inner.handle_request(request)
        answer.read()
        if request.method == "GET" and re.search(r"/customers/[^/]+$", request.url.path):
            record = json.loads(answer.content)
            record.pop("contacts", None)
            return httpx.Response(answer.status_code, json=record)
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)


# == holes found by the attack, now closed ==========================================


def test_undo_removes_a_custom_property_the_run_created(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    """Was a hole: a run that created ``customProperties.costCentre`` is undone by an EMPTY
    plan ("no changes", no note): ``_restoring`` pops the key, so the restored frame has no
    such column, and ``plan_updates`` keeps columns the edited frame lacks. The property
    stays; the undo skipped a write that landed, silently."""
    server = _sandbox(make_sandbox)
    record = _live(server, lambda r: "costCentre" not in (r.get("customProperties") or {}))
    original = _frame(record)
    plan = plan_updates(
        original, _set(original, "customProperties.costCentre", "CC-7"), api_version=V
    )
    with contract_client(server) as client:
        result = plan.apply(client, journal=journal)
        assert result.counts() == {"updated": 1}
        back = undo(result.run_id or "", client, journal=journal)
        assert back.sendable or not back.errors.is_empty(), "undo is silent about a landed write"
        back.apply(client, journal=journal)
        after = client.get_customer(record["id"])
    assert after.get("customProperties") == record.get("customProperties")


def test_undo_removes_the_first_contact_the_run_added(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    """Was a hole: a customer with no contacts gets one; undo plans "no changes" and notes
    nothing about contacts: the restored contacts frame has no row for the customer, and
    ``contact_edits`` leaves alone a customer none of whose contacts is in the edited
    frame. The contact stays. (The only notes are bogus property "side effects".)"""
    server = _sandbox(make_sandbox)
    record = _live(server, lambda r: not r["contacts"])
    with contract_client(server) as client:
        contacts = fetch_contacts(client, [record["id"]], progress=False)
        added = pl.DataFrame(
            [
                {
                    "customerId": record["id"],
                    "name": "New Person",
                    "email": "new.person@example.org",
                    "billingPreference": "PRIMARY",
                }
            ]
        )
        edited = pl.concat([contacts, added], how="diagonal_relaxed")
        original = _frame(record)
        plan = plan_updates(
            original, original, contacts=contacts, edited_contacts=edited, api_version=V
        )
        result = plan.apply(client, journal=journal)
        assert result.counts() == {"updated": 1}
        back = undo(result.run_id or "", client, journal=journal)
        contact_notes = back.errors.filter(pl.col("column") == "contacts")
        assert back.sendable or not contact_notes.is_empty(), "undo is silent about the contact"
        back.apply(client, journal=journal)
        assert client.get_customer(record["id"])["contacts"] == []


def test_undo_never_restores_a_property_the_run_did_not_touch(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    """Was a hole (wrong write): a run edits ``label`` only (its body omits customProperties, as
    designed). Someone then removes a property in the dashboard. Undo re-adds that
    property: ``edited_columns`` compares the body with the full update body of the
    before-image, reads every omitted property as "the run cleared it", and since the
    record holds None (= what the run "wrote") it restores the old value. Undo writes a
    change the run never made, over a later remote edit."""
    server = _sandbox(make_sandbox)
    record = _live(server, lambda r: len(r.get("customProperties") or {}) >= 2)
    key = sorted(record["customProperties"])[0]
    original = _frame(record)
    plan = plan_updates(original, _set(original, "label", "relabelled"), api_version=V)
    with contract_client(server) as client:
        result = plan.apply(client, journal=journal)
        assert result.counts() == {"updated": 1}
        server.edit_remote(record["id"], {"customProperties": {key: None}})  # someone else
        back = undo(result.run_id or "", client, journal=journal)
        columns = [c.column for row in back.rows for c in row.changes]
        assert columns == ["label"], f"undo would write {columns}"


def test_undo_of_a_label_edit_reports_no_property_side_effects(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    """Was a hole (false report): undoing a 2024 label edit lists every custom property as a
    "(side effect) cannot be undone here: customProperties.x: sent None, the answer holds
    ..." although the write sent no properties and changed none. Real side effects drown
    in the noise."""
    server = _sandbox(make_sandbox)
    record = _live(server, lambda r: len(r.get("customProperties") or {}) >= 2)
    original = _frame(record)
    plan = plan_updates(original, _set(original, "label", "relabelled"), api_version=V)
    with contract_client(server) as client:
        result = plan.apply(client, journal=journal)
        back = undo(result.run_id or "", client, journal=journal)
    assert back.errors.filter(pl.col("column") == "(side effect)").is_empty(), (
        back.errors.to_dicts()
    )


def test_an_archive_that_landed_is_never_reported_failed(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    """Was a hole (a landed write reported failed, for good): the archive POST lands but its
    answer is lost to a non-API error. ``_archive`` catches only APIError, so ``_timed``
    records ``failed`` ("unexpected error"); resume keeps ``failed`` (it only settles
    pending/unconfirmed rows), and ``result.failed()`` then reports ``skipped: already
    archived``. The journal never says the run archived the customer. A PUT in the same
    situation is ``unconfirmed`` and settled by a re-read (``_write``'s guard)."""
    server = _sandbox(make_sandbox)
    record = _live(server)
    plan = plan_archive(_frame(record), [record["id"]], api_version=V)
    with server.client(transport=_DiesAfterSending("POST"), **_FAST) as client:
        result = plan.apply(client, journal=journal)
    assert server.get_record(record["id"]).get("archivedAt")  # it landed
    assert result.counts() != {"failed": 1}, result.rows[0].message
    with server.client(**_FAST) as client:
        resumed = resume(result.run_id or "", client, journal=journal)
    assert resumed.counts() == {"updated": 1}, resumed.rows[0].message


def test_undo_does_not_say_a_refused_archive_archived_the_customer(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    """Was a hole (false report): an archive the server refused (422, ``failed``, nothing
    applied) is reported by undo as "this run archived the customer, and Sequence has no
    way back": ``undo`` notes every journaled ARCHIVE_BODY whatever its status and
    whatever the record holds."""
    server = _sandbox(make_sandbox)
    record = _live(server)
    plan = plan_archive(_frame(record), [record["id"]], api_version=V)
    with server.client(transport=_RefusesArchive(), **_FAST) as client:
        result = plan.apply(client, journal=journal)
        assert result.counts() == {"failed": 1}
        back = undo(result.run_id or "", client, journal=journal)
    assert not server.get_record(record["id"]).get("archivedAt")
    messages = back.errors["message"].to_list()
    assert not any("this run archived the customer" in m for m in messages), messages


def test_a_plan_that_edits_an_archived_contact_saves_and_loads(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    """Was a hole: renaming an archived contact (fetch_contacts lists archived contacts) makes a
    row "1 to update" whose ``contacts`` change has old == new (the body leaves archived
    contacts out). The plan saves, but ``ChangePlan.from_json`` refuses its own file
    ("changes nothing: the old and new values are the same"), and the push says
    "skipped". The planner should refuse or note the edit, not plan a no-op it cannot
    load back."""
    server = _sandbox(make_sandbox)
    record = _live(server, lambda r: len(r["contacts"]) >= 2)
    contacts = [dict(c) for c in record["contacts"]]
    contacts[-1]["archivedAt"] = "2025-01-01T00:00:00Z"
    server.edit_remote(record["id"], {"contacts": contacts})
    with contract_client(server) as client:
        frame = fetch_contacts(client, [record["id"]], progress=False)
    edited = frame.with_columns(
        pl.when(pl.col("archivedAt").is_not_null())
        .then(pl.lit("Renamed Archived"))
        .otherwise(pl.col("name"))
        .alias("name")
    )
    original = _frame(record)
    plan = plan_updates(original, original, contacts=frame, edited_contacts=edited, api_version=V)
    ChangePlan.from_json(plan.to_json())  # raised PlanFileError before the fix


def test_deleting_every_contact_of_a_customer_is_not_dropped_in_silence(
    make_sandbox: SandboxFactory,
) -> None:
    """Was a hole (silent): deleting all of a customer's contact rows plans "no changes" with no
    note at all. By the module's rule a customer with no rows left is "left as it is",
    but the person who deleted the rows is never told that nothing will happen (and there
    is no other way to remove a customer's last contacts)."""
    server = _sandbox(make_sandbox)
    record = _live(server, lambda r: len(r["contacts"]) >= 2)
    with contract_client(server) as client:
        contacts = fetch_contacts(client, [record["id"]], progress=False)
    original = _frame(record)
    plan = plan_updates(
        original, original, contacts=contacts, edited_contacts=contacts.clear(), api_version=V
    )
    assert plan or not plan.errors.is_empty(), "the deletion vanished without a word"


def test_fetch_contacts_is_loud_about_a_record_without_contacts(
    make_sandbox: SandboxFactory,
) -> None:
    """Was a hole (hostile server): a ``GET /customers/{id}`` answer without ``contacts`` (a
    list page's shape) gives the customer zero rows, silently; ``fetch_contacts`` promises
    "complete or loud". A contact then added to that customer plans a body that replaces
    all real contacts with the one new contact (the push's conflict check stops it by
    default; ``on_conflict="overwrite"`` sends it)."""
    server = _sandbox(make_sandbox)
    record = _live(server, lambda r: len(r["contacts"]) >= 2)
    with (
        server.client(transport=_GetWithoutContacts(), **_FAST) as client,
        pytest.raises(ContactFetchError),
    ):
        fetch_contacts(client, [record["id"]], progress=False)


def test_a_partly_filtered_contacts_frame_does_not_remove_the_rest_unannounced(
    make_sandbox: SandboxFactory,
) -> None:
    """Was a hazard (design): editing a frame filtered by preference (``billingPreference ==
    "PRIMARY"``) deletes every other contact of each customer it touches. The module's
    "a filtered frame removes nothing" holds only for customers with no row left. The
    plan says "1 to update" with no note that contacts are removed; the removal is only
    visible inside the whole-list old/new cells of the preview."""
    server = _sandbox(make_sandbox)
    record = _live(
        server,
        lambda r: len(r["contacts"]) >= 3 and r["contacts"][0]["billingPreference"] == "PRIMARY",
    )
    with contract_client(server) as client:
        contacts = fetch_contacts(client, [record["id"]], progress=False)
    edited = contacts.filter(pl.col("billingPreference") == "PRIMARY").with_columns(
        pl.lit("Renamed Primary").alias("name")
    )
    original = _frame(record)
    plan = plan_updates(
        original, original, contacts=contacts, edited_contacts=edited, api_version=V
    )
    (row,) = plan.rows
    assert len(row.body["contacts"]) == 1  # two or more contacts removed
    mentioned = " ".join(plan.errors["message"].to_list()) + plan.summary()
    assert "remove" in mentioned, "nothing says contacts are removed"


def test_a_customer_the_plan_says_is_not_sent_gets_no_contacts_write(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    """Was a hole (the plan contradicts what it sends): the customer's row appears twice in the
    edited customers frame, so the plan notes "appears on more than one row of the edited
    frame; not sent" (and, wrongly, "removed from the edited frame"); its contact edits
    are still folded into a row of their own and sent. The preview says not sent, the
    push writes."""
    server = _sandbox(make_sandbox)
    record = _live(server, lambda r: len(r["contacts"]) >= 2)
    with contract_client(server) as client:
        contacts = fetch_contacts(client, [record["id"]], progress=False)
        original = _frame(record)
        twice = pl.concat([_set(original, "label", "one"), _set(original, "label", "two")])
        plan = plan_updates(
            original,
            twice,
            contacts=contacts,
            edited_contacts=contacts.with_columns(pl.lit("Renamed").alias("name")),
            api_version=V,
        )
        said_not_sent = any("not sent" in m for m in plan.errors["message"].to_list())
        result = plan.apply(client, journal=journal)
    assert not (said_not_sent and result.counts().get("updated")), (
        plan.errors.to_dicts(),
        result.counts(),
    )


def test_resuming_with_a_client_of_another_version_is_refused_not_journaled_invalid(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    """Was a hole (a write lost for good): ``apply`` refuses a client of another API version,
    ``resume`` (``continue_run``) and ``undo`` do not. A 2024 run left ``unconfirmed``
    and resumed by a seed client rebuilds the body in the seed's shape, fails
    validation and is journaled ``invalid``; a later resume with the right client treats
    ``invalid`` as settled and never sends the write."""
    server = _sandbox(make_sandbox)
    record = _live(server)
    original = _frame(record)
    plan = plan_updates(original, _set(original, "label", "resumed"), api_version=V)

    class _Lost(httpx.BaseTransport):
        def __init__(self) -> None:
            self.inner = httpx.HTTPTransport()

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "PUT":
                raise httpx.ReadTimeout("lost before the server saw it (test)", request=request)
            return self.inner.handle_request(request)

    with server.client(transport=_Lost(), **_FAST) as client:
        crashed = plan.apply(client, journal=journal)
    assert crashed.counts() == {"unconfirmed": 1}
    with (
        server.client(**{**_FAST, "api_version": "seed"}) as seed_client,
        pytest.raises(SequenceError, match=r"pushed in API version 2024-07-30.*speaks seed"),
    ):
        resume(crashed.run_id or "", seed_client, journal=journal)
    with contract_client(server) as client:
        resume(crashed.run_id or "", client, journal=journal)
    assert server.get_record(record["id"])["label"] == "resumed"


def test_an_archive_plan_shows_the_call_it_makes(make_sandbox: SandboxFactory) -> None:
    """Was a hole (preview says another call): ``plan.requests()`` ("the exact calls that would
    be sent") lists ``PUT /customers/{id}`` with an empty body for an archive row (the push
    sends ``POST /customers/{id}/archive``), and the notebook view's status column says
    ``update`` where ``preview()`` says ``archive``. (For 2024 update rows ``requests()``
    also omits the ``Sequence-Version`` header and shows a body without the contacts the
    push adds.)"""
    server = _sandbox(make_sandbox)
    record = _live(server)
    plan = plan_archive(_frame(record), [record["id"]], api_version=V)
    (call,) = plan.requests(server.url)
    assert (call["method"], call["url"].endswith("/archive")) == ("POST", True), call
    assert "<td>update</td>" not in plan._repr_html_()


# == attacks that held ===============================================================


def test_held_contacts_changed_remotely_after_fetch_are_a_conflict(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = _sandbox(make_sandbox)
    record = _live(server, lambda r: len(r["contacts"]) >= 2)
    with contract_client(server) as client:
        contacts = fetch_contacts(client, [record["id"]], progress=False)
        edited = contacts.with_columns(
            pl.when(pl.int_range(pl.len()) == 0)
            .then(pl.lit("Edited Name"))
            .otherwise(pl.col("name"))
            .alias("name")
        )
        original = _frame(record)
        plan = plan_updates(
            original, original, contacts=contacts, edited_contacts=edited, api_version=V
        )
        remote = [*record["contacts"]]
        remote.append(
            {
                "id": "remote-added",
                "name": "Remote Added",
                "email": "remote.added@example.org",
                "billingPreference": "NONE",
                "createdAt": "2026-01-01T00:00:00Z",
                "updatedAt": "2026-01-01T00:00:00Z",
            }
        )
        server.edit_remote(record["id"], {"contacts": remote})
        assert plan.apply(client, journal=journal).counts() == {"conflict": 1}
    assert len(server.get_record(record["id"])["contacts"]) == len(remote)


def test_held_a_property_edit_keeps_properties_added_and_removed_remotely(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = _sandbox(make_sandbox)
    record = _live(server, lambda r: len(r.get("customProperties") or {}) >= 2)
    first, second = sorted(record["customProperties"])[:2]
    original = _frame(record)
    plan = plan_updates(
        original, _set(original, f"customProperties.{first}", "mine"), api_version=V
    )
    server.edit_remote(record["id"], {"customProperties": {second: None, "addedRemotely": "yes"}})
    with contract_client(server) as client:
        assert plan.apply(client, journal=journal).counts() == {"updated": 1}
    expected = {**record["customProperties"], first: "mine", "addedRemotely": "yes"}
    del expected[second]
    assert server.get_record(record["id"])["customProperties"] == expected


def test_held_a_contacts_and_property_write_whose_answer_is_lost_resumes_and_undoes(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = _sandbox(make_sandbox)
    record = _live(
        server, lambda r: len(r["contacts"]) >= 2 and len(r.get("customProperties") or {}) >= 2
    )
    key = sorted(record["customProperties"])[0]
    with server.client(**_FAST) as client:
        contacts = fetch_contacts(client, [record["id"]], progress=False)
    edited = contacts.with_columns(pl.lit("Renamed").alias("name")).head(contacts.height - 1)
    original = _frame(record)
    plan = plan_updates(
        original,
        _set(original, f"customProperties.{key}", "crash"),
        contacts=contacts,
        edited_contacts=edited,
        api_version=V,
    )
    with server.client(transport=_DiesAfterSending("PUT"), **_FAST) as client:
        crashed = plan.apply(client, journal=journal)
    assert crashed.counts() == {"unconfirmed": 1}
    run_id = crashed.run_id or ""
    with contract_client(server) as client:
        assert resume(run_id, client, journal=journal).counts() == {"updated": 1}
        back = undo(run_id, client, journal=journal)
        assert back.apply(client, journal=journal).counts() == {"updated": 1}
        after = client.get_customer(record["id"])
    assert after["customProperties"] == record["customProperties"]
    assert [(c["name"], c["email"]) for c in after["contacts"]] == [
        (c["name"], c["email"]) for c in record["contacts"]
    ]


def test_held_tampered_2024_plan_files_are_refused(make_sandbox: SandboxFactory) -> None:
    server = _sandbox(make_sandbox)
    record = _live(server, lambda r: len(r["contacts"]) >= 2)
    with contract_client(server) as client:
        contacts = fetch_contacts(client, [record["id"]], progress=False)
    original = _frame(record)
    plan = plan_updates(
        original,
        _set(original, "label", "T"),
        contacts=contacts,
        edited_contacts=contacts.with_columns(pl.lit("Renamed").alias("name")),
        api_version=V,
    )
    archive = json.loads(plan_archive(original, [record["id"]], api_version=V).to_json())
    saved = json.loads(plan.to_json())

    def tampered(change: Any, document: dict[str, Any] = saved) -> str:
        copy = json.loads(json.dumps(document))
        change(copy)
        return json.dumps(copy)

    def contacts_change(d: dict[str, Any]) -> dict[str, Any]:
        return next(c for c in d["rows"][0]["changes"] if c["column"] == "contacts")

    attempts = [
        tampered(lambda d: d["rows"][0].update(action="archive")),
        tampered(lambda d: d["rows"][0].pop("action"), archive),
        tampered(lambda d: contacts_change(d).update(new=contacts_change(d)["new"][:1])),
        tampered(lambda d: d["rows"][0]["body"].update(contacts=[])),
        tampered(lambda d: d["rows"][0]["before"].update(contacts=[])),
        tampered(lambda d: d.update(api_version="seed")),
        tampered(lambda d: d.update(api_version=None)),
        tampered(lambda d: d.update(api_version=None), archive),
        tampered(
            lambda d: d["rows"][0]["before"].update(archivedAt="2025-01-01T00:00:00Z"), archive
        ),
    ]
    for text in attempts:
        with pytest.raises(PlanFileError):
            ChangePlan.from_json(text)


def test_held_an_old_plan_file_without_a_version_is_refused_by_a_2024_client(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = _sandbox(make_sandbox)
    record = _live(server)
    original = _frame(record)
    plan = plan_updates(original, _set(original, "label", "x"), api_version=V)
    seed_plan = ChangePlan(rows=plan.rows, api_version=None)
    with (
        server.client(**_FAST) as client,
        pytest.raises(PlanError, match="made for API version seed"),
    ):
        seed_plan.apply(client, journal=journal)
