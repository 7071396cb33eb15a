"""Benchmark: applying job events through the public API versus a bare driver loop.

Two jobs on the same MongoDB server receive the same number of ``update`` events:

* **api**: ``JobService.send(job, "update", data=...)``, the public path, with its
  argument checks, schema validation, bookkeeping and error translation;
* **bare**: a pymongo ``find_one_and_update`` loop doing the equivalent conditional
  ``$push`` (same filter: job, visibility, allowed states, unseen entry, history room;
  same update: ``$set`` state fields and modified date, ``$push`` the entry, ``$inc``
  revision and history bytes; same projection and return of the updated document).

The two paths run in interleaved blocks so both see the same server conditions as their
documents grow. Every command sent to the server is counted by a pymongo
``CommandListener`` on each path's client, so the table shows database round trips per
accepted event (the design goal for the API is exactly one).

Run it with ``make bench`` or ``python bench/bench_events.py [--events N]``. A throw-away
``mongod`` is started unless ``DATACATALOG_TEST_MONGODB_URI`` names a server; the
benchmark's database is dropped at the end either way.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from command_counter import CommandCounter
from pymongo import MongoClient, ReturnDocument
from pymongo.collection import Collection

from datacatalog import jobs, states
from datacatalog.catalog import Catalog
from datacatalog.clock import utc_now
from datacatalog.freeform import encoded_size
from datacatalog.settings import Settings
from datacatalog.store import connect
from datacatalog.testing.mongod import URI_ENV, MongodServer

DEFAULT_EVENTS = 10_000
DEFAULT_BLOCK = 500
SECRET = "bench-secret-" + "0" * 32


@dataclass
class Lane:
    """One path's measurements."""

    name: str
    listener: CommandCounter
    seconds: float = 0.0
    sent: int = 0
    accepted: int = 0
    round_trips: int = 0
    commands: Counter[str] = field(default_factory=Counter)
    block_rates: list[float] = field(default_factory=list)

    @contextmanager
    def timed(self) -> Iterator[None]:
        before = Counter(self.listener.counts)
        accepted = self.accepted
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            self.seconds += elapsed
            if elapsed > 0:
                self.block_rates.append((self.accepted - accepted) / elapsed)
            delta = self.listener.counts - before
            self.commands += delta
            self.round_trips += sum(delta.values())


@contextmanager
def server_uri() -> Iterator[tuple[str, str]]:
    """The server to measure: the one in the environment, or a throw-away mongod."""
    given = os.environ.get(URI_ENV)
    if given:
        yield given, f"{URI_ENV}"
        return
    with MongodServer() as server:
        yield server.uri, "throw-away mongod"


def bare_update(coll: Collection[dict[str, Any]], job_uuid: str, beat: int) -> bool:
    """The conditional ``$push`` that ``JobService.send`` issues, written by hand."""
    row = states.transition("update")
    entry = {
        "uuid": str(uuid.uuid4()),
        "event_id": None,
        "name": "update",
        "date": utc_now(),
        "data": {"beat": beat},
        "to_state": row.target,
        "agent": None,
        "host": "bench",
        "pid": os.getpid(),
        "version": "bare",
    }
    size = encoded_size(entry["data"]) + jobs._ENTRY_OVERHEAD
    after = coll.find_one_and_update(
        {
            "uuid": job_uuid,
            "_visible": True,
            "state": {"$in": list(row.sources)},
            "history.uuid": {"$ne": entry["uuid"]},
            "_properties.history_bytes": {"$lte": jobs.MAX_HISTORY_BYTES - size},
        },
        {
            "$set": {"last_event": "update", "_properties.modified_date": utc_now()},
            "$push": {"history": entry},
            "$inc": {"_properties.history_bytes": size, "_properties.revision": 1},
        },
        projection={"history": 0},
        return_document=ReturnDocument.AFTER,
    )
    return after is not None


def run(uri: str, events: int, block: int, data_dir: Path) -> tuple[Lane, Lane, list[int]]:
    """Measure both paths; return their lanes and the final history lengths."""
    api_listener, bare_listener = CommandCounter(), CommandCounter()
    api_client: MongoClient[dict[str, Any]] = MongoClient(
        uri, tz_aware=True, event_listeners=[api_listener]
    )
    bare_client: MongoClient[dict[str, Any]] = MongoClient(
        uri, tz_aware=True, event_listeners=[bare_listener]
    )
    database = f"bench_events_{uuid.uuid4().hex[:10]}"
    try:
        store = connect(api_client[database])
        settings = Settings.load(env={}, data_dir=data_dir, secret=SECRET)
        catalog = Catalog(store, settings=settings)
        pipeline, _ = catalog.pipelines.register(
            {"id": "bench.events", "components": [{"image": "bench:1"}]}
        )
        catalog.metadata.load([{"experiment_design_id": "bench.design"}])
        plan = catalog.jobs.plan(
            pipeline=pipeline.uuid,
            metadata={"experiment_design_id": "bench.design"},
            data={"bench": "events"},
        )
        job, _ = catalog.jobs.create(plan, setup_archive_path=False)
        catalog.jobs.send(job.uuid, "run")  # also creates every index before timing

        # The bare path's job: a copy of the API job's document, in its own collection.
        bare_coll = bare_client[database]["bare_jobs"]
        bare_coll.create_index("uuid", unique=True)
        template = api_client[database]["jobs"].find_one({"uuid": job.uuid}, {"_id": 0})
        assert template is not None
        bare_uuid = str(uuid.uuid4())
        bare_coll.insert_one({**template, "uuid": bare_uuid})

        api = Lane("JobService.send", api_listener)
        bare = Lane("bare find_one_and_update", bare_listener)
        for start in range(0, events, block):
            beats = range(start, min(start + block, events))
            with api.timed():
                for beat in beats:
                    result = catalog.jobs.send(job.uuid, "update", data={"beat": beat})
                    api.accepted += result.applied
            api.sent += len(beats)
            with bare.timed():
                for beat in beats:
                    bare.accepted += bare_update(bare_coll, bare_uuid, beat)
            bare.sent += len(beats)

        lengths = []
        for coll, key in ((api_client[database]["jobs"], job.uuid), (bare_coll, bare_uuid)):
            counted = list(
                coll.aggregate(
                    [
                        {"$match": {"uuid": key}},
                        {"$project": {"n": {"$size": "$history"}}},
                    ]
                )
            )
            lengths.append(int(counted[0]["n"]))
        return api, bare, lengths
    finally:
        api_client.drop_database(database)
        api_client.close()
        bare_client.close()


def table(api: Lane, bare: Lane, lengths: Sequence[int], where: str) -> str:
    """The printed result."""

    def rate(lane: Lane) -> float:
        return lane.accepted / lane.seconds if lane.seconds else float("nan")

    def per_event(lane: Lane) -> float:
        return lane.round_trips / lane.accepted if lane.accepted else float("nan")

    header = f"{'path':<26} {'events':>8} {'accepted':>9} {'seconds':>8} {'events/s':>9} "
    header += f"{'round trips/event':>18}"
    lines = [f"server: {where}", header, "-" * len(header)]
    for lane in (api, bare):
        lines.append(
            f"{lane.name:<26} {lane.sent:>8} {lane.accepted:>9} {lane.seconds:>8.2f} "
            f"{rate(lane):>9.0f} {per_event(lane):>18.2f}"
        )
    lines.append("-" * len(header))
    lines.append(f"ratio api/bare (events/s): {rate(api) / rate(bare):.2f}")
    for lane in (api, bare):
        if lane.block_rates:
            lines.append(
                f"{lane.name} events/s: first block {lane.block_rates[0]:.0f}, "
                f"last block {lane.block_rates[-1]:.0f}"
            )
    lines.append(f"api commands: {dict(sorted(api.commands.items()))}")
    lines.append(f"bare commands: {dict(sorted(bare.commands.items()))}")
    lines.append(
        f"history entries at the end: api {lengths[0]}, bare {lengths[1]} "
        f"(create + run + {api.accepted} updates = {api.accepted + 2})"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--events", type=int, default=DEFAULT_EVENTS, help="events per path (10000)"
    )
    parser.add_argument(
        "--block",
        type=int,
        default=DEFAULT_BLOCK,
        help="events per interleaved block (500)",
    )
    args = parser.parse_args(argv)
    if args.events < 1 or args.block < 1:
        parser.error("--events and --block must be positive")
    with server_uri() as (uri, where), tempfile.TemporaryDirectory() as data_dir:
        api, bare, lengths = run(uri, args.events, args.block, Path(data_dir))
    print(table(api, bare, lengths, where))
    if api.accepted != args.events or lengths[0] != args.events + 2:
        print("error: the API path did not record every event", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
