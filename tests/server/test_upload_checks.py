"""An upload answers with what the input checks say of the data set it
leaves (SPEC §3: the server validates and answers with counts and
warnings), as a run of that data set reports them as plan messages."""

from __future__ import annotations

from masterplan.contract.coded import as_array
from masterplan.server.upload_checks import MAX_UPLOAD_WARNINGS
from masterplan.v1 import planning_data_pb2 as pb
from tests.server.conftest import Live
from tests.server.test_delta_upload import DATA, PLAN, T0, keys, sale, tables


def _said(response: pb.UploadDatasetResponse) -> list[tuple[str, str, str | None, str | None, str]]:
    return [
        (w.severity, w.code, w.item_id or None, w.warehouse_id or None, w.text)
        for w in response.warnings
    ]


def test_an_upload_says_what_a_run_of_its_data_set_reports(live: Live) -> None:
    bad = {**DATA, "sales_lines": [sale("S1", 10), sale("S2", -5), sale("S3", 1, "GHOST")]}
    with live.client("acme") as c:
        response = c.upload(PLAN, tables(bad))
        said = _said(response)
        # In the order of §5.9's checks, as the run reports them.
        assert [(code, item) for _, code, item, _, _ in said] == [
            ("UNKNOWN_ITEM", "GHOST"),
            ("INVALID_QTY", "A"),
        ]
        assert "order_id='S2'" in said[1][4]
        assert dict(response.warning_counts) == {"INVALID_QTY": 1, "UNKNOWN_ITEM": 1}
        messages = c.run_plan(PLAN, plan_date=T0).tables["plan_messages"]
        columns = [as_array(messages[k]).tolist() for k in ("severity", "code")]
        columns += [as_array(messages[k]).tolist() for k in ("item_id", "warehouse_id", "text")]
        assert said == list(zip(*columns, strict=True))


def test_a_delta_is_answered_for_the_data_set_it_leaves(live: Live) -> None:
    """Deleting item B makes a sales line the delta never touched name an
    unknown item."""
    with live.client("acme") as c:
        first = c.upload(PLAN, tables(DATA))
        assert list(first.warnings) == [] and dict(first.warning_counts) == {}

        def drop_b() -> pb.UploadDatasetResponse:
            return c.upload(
                PLAN,
                [],
                mode="delta",
                base_etag=first.etag,
                deletes=[keys("items", {"item_id": "B"})],
                request_id="drop-b",
            )

        gone = drop_b()
        assert [(w.code, w.item_id) for w in gone.warnings] == [("UNKNOWN_ITEM", "B")]
        assert "S3" in gone.warnings[0].text
        # A retry is answered as the upload was, findings and all.
        assert drop_b() == gone


def test_the_findings_listed_are_bounded_and_the_counts_are_whole(live: Live) -> None:
    n = MAX_UPLOAD_WARNINGS + 50
    many = {**DATA, "sales_lines": [sale(f"X{i}", 1, f"GHOST{i}") for i in range(n)]}
    with live.client("acme") as c:
        response = c.upload(PLAN, tables(many))
        assert len(response.warnings) == MAX_UPLOAD_WARNINGS
        assert dict(response.warning_counts) == {"UNKNOWN_ITEM": n}
        assert {w.item_id for w in response.warnings} < {f"GHOST{i}" for i in range(n)}


def test_a_client_that_plans_next_may_skip_the_checks(live: Live) -> None:
    bad = {**DATA, "sales_lines": [sale("S3", 1, "GHOST")]}
    with live.client("acme") as c:
        response = c.upload(PLAN, tables(bad), checks=False)
        assert list(response.warnings) == [] and dict(response.warning_counts) == {}
        assert response.total_rows == 2 + 1 + 2 + 1
