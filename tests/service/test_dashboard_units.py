"""The dashboard's pure parts: paging cursors, page details, inline SVG checks."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from datacatalog.errors import InvalidRequestError, UnavailableError
from datacatalog.jobs import HistoryEntry
from datacatalog.service.ui import details
from datacatalog.service.ui.paging import Cursor, after, reversed_keys
from datacatalog.service.ui.pictures import inline_svg
from datacatalog.service.ui.queries import JobQuery
from datacatalog.service.ui.render import size

KEYS = [("_properties.created_date", -1), ("uuid", 1)]
WHEN = datetime(2026, 12, 1, 11, 0, 0, 123000, tzinfo=timezone.utc)


def test_a_cursor_reads_back_what_it_wrote() -> None:
    cursor = Cursor.of({"_properties": {"created_date": WHEN}, "uuid": "107a"}, KEYS)
    assert cursor.values == (WHEN, "107a")
    assert Cursor.decode(cursor.encode(), keys=KEYS, where="after") == cursor


@pytest.mark.parametrize(
    "text",
    [
        "",
        "!!!",
        "x" * 2000,
        Cursor(("only one",)).encode(),
        Cursor((1, "x")).encode(),
        Cursor(({"$date": "yesterday"}, "x")).encode(),
        Cursor(({"$where": "1"}, "x")).encode(),
    ],
)
def test_a_bad_cursor_is_refused_by_name(text: str) -> None:
    with pytest.raises(InvalidRequestError, match="after is not a paging cursor"):
        Cursor.decode(text, keys=KEYS, where="after")


def test_after_asks_for_the_rows_past_the_cursor_in_the_sort_order() -> None:
    cursor = Cursor((WHEN, "107a"))
    assert after(cursor, KEYS) == {
        "$or": [
            {"_properties.created_date": {"$lt": WHEN}},
            {"_properties.created_date": WHEN, "uuid": {"$gt": "107a"}},
        ]
    }
    assert after(cursor, reversed_keys(KEYS))["$or"][0] == {
        "_properties.created_date": {"$gt": WHEN}
    }


def test_after_puts_the_filter_into_every_branch() -> None:
    # MongoDB merges the branches in index order only when the filter is inside them.
    found = after(Cursor((WHEN, "107a")), KEYS, within={"state": "RUNNING"})
    assert found == {
        "$or": [
            {"$and": [{"state": "RUNNING"}, {"_properties.created_date": {"$lt": WHEN}}]},
            {
                "$and": [
                    {"state": "RUNNING"},
                    {"_properties.created_date": WHEN, "uuid": {"$gt": "107a"}},
                ]
            },
        ]
    }


def test_job_query_defaults_and_params() -> None:
    query = JobQuery.from_params({"state": " running ", "limit": "100", "sample": ""})
    assert query.state == "RUNNING" and query.limit == 100 and query.sample is None
    assert query.params() == {"state": "RUNNING", "limit": "100"}
    assert query.params(after="c") == {"state": "RUNNING", "limit": "100", "after": "c"}
    assert JobQuery.from_params({"sort": "state"}).keys()[0] == ("state", 1)
    assert JobQuery.from_params({"sort": "state", "order": "desc"}).keys()[0] == ("state", -1)


def entry(name: str, data: dict[str, object], **who: object) -> HistoryEntry:
    return HistoryEntry(uuid="108x", name=name, date=WHEN, data=data, **who)  # type: ignore[arg-type]


def test_last_verify_is_the_newest_verify_update() -> None:
    history = [
        entry("update", {"verify": {"unchanged": 1, "changed": 1}}),
        entry("update", {"progress": 2}),
        entry("update", {"verify": {"unchanged": 2, "changed": 0, "missing": 0}}),
        entry("update", {"verify": "not counts"}),
    ]
    found = details.last_verify(history)
    assert found is not None and found.counts["unchanged"] == 2 and found.ok
    assert details.last_verify(history[:1]) is not None
    assert not details.last_verify(history[:1]).ok  # type: ignore[union-attr]
    assert details.last_verify([]) is None


def test_the_holder_is_the_lease_or_the_sender_of_run() -> None:
    later = WHEN + timedelta(minutes=5)
    history = [entry("run", {}, agent="a", host="h", pid=7), entry("update", {})]
    held = details.holder({"state": "RUNNING"}, history, now=later)
    assert held is not None and held.fields == {"agent": "a", "host": "h", "pid": 7}
    assert held.source == "run event" and held.since == WHEN and not held.lapsed
    lease = {"holder": "x", "kind": "driver", "since": WHEN, "expires": later}
    leased = details.holder({"state": "RUNNING", "lease": lease}, [], now=WHEN)
    assert leased is not None and leased.source == "lease" and leased.since == WHEN
    assert not leased.lapsed
    lapsed = details.holder(
        {"state": "RUNNING", "lease": lease}, [], now=later + timedelta(seconds=1)
    )
    assert lapsed is not None and lapsed.lapsed
    assert details.holder({"state": "FINISHED", "lease": None}, history, now=later) is None


def test_a_location_never_shows_a_password() -> None:
    assert details.location("file:///data/archive/", "/a/b.txt") == "file:///data/archive/a/b.txt"
    assert details.location("sftp://me:secret@host:22/root", "/x") == "sftp://me:***@host:22/root/x"
    assert details.location(None, "/x") is None


def test_sizes_for_people() -> None:
    assert [size(v) for v in (None, 0, 1023, 1024, 1536 * 1024)] == [
        "", "0 B", "1023 B", "1.0 KiB", "1.5 MiB",
    ]  # fmt: skip


SVG = (
    '<?xml version="1.0"?>\n<!DOCTYPE svg>\n<!-- made -->\n'
    '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
    '<a xlink:href="/ui/x"><text>a</text></a></svg>'
)


def test_inline_svg_drops_the_prolog_and_keeps_the_drawing() -> None:
    inlined = str(inline_svg(SVG))
    assert inlined.startswith("<svg") and "<!--" not in inlined and 'xlink:href="/ui/x"' in inlined


@pytest.mark.parametrize(
    "active",
    [
        '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg"><foreignObject/></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
        '<a xlink:href="javascript:alert(1)"/></svg>',
        "<html><body/></html>",
        "<svg",
    ],
)
def test_inline_svg_refuses_anything_active(active: str) -> None:
    with pytest.raises(UnavailableError, match="lineage picture"):
        inline_svg(active)
