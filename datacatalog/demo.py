"""The end-to-end demonstration: one real pipeline job, from registration to provenance.

:func:`run` does, on any catalog (the zero-configuration default is the managed local
MongoDB server in the data dir, started on first use):

1. registers the example pipeline (:data:`PIPELINE`) and loads the example metadata
   (:data:`METADATA`: a design, an experiment, two samples, four measurements);
2. writes the input, a small CSV of plate-reader measurements, to the default
   storage system (the same bytes every time) and catalogs it as a file record (level 0,
   raw data, with its sha256), so the job's input is in the catalog;
3. creates the job for one sample (or finds it: the job's identity is its pipeline,
   sample and parameters, so a second run finds the same job and says so);
4. runs the computation in Python, reporting ``run``, progress ``update`` events and
   ``finish``: per-measurement statistics of the sample's readings, written to the
   job's archive path as a CSV summary, a JSON report and two text plots;
5. indexes the outputs with sha256 fixity (the job ends FINISHED);
6. returns the job, its history, its files and each file's provenance chain
   (file -> job -> pipeline -> sample -> experiment -> experiment design).

Every event carries an idempotency key, so a run interrupted half-way is resumed by
running the demo again, without duplicating history.

The example data lives here, in code, so the demo works from an installed wheel;
``examples/pipeline.json`` and ``examples/metadata.yaml`` hold the same content for
people to read and load with the command line (a test keeps them equal). All demo
data is defined and read in this module.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from datacatalog.catalog import Catalog
from datacatalog.errors import DataCatalogError
from datacatalog.identifiers import kind_of
from datacatalog.jobs import Actor, HistoryEntry, Job
from datacatalog.metadata import LEVELS
from datacatalog.pipelines import Pipeline
from datacatalog.storage import StorageSystem

# -- the example data (examples/ holds the same content) -----------------------------------

PIPELINE: dict[str, Any] = {
    "id": "demo-stats",
    "name": "Demo growth statistics",
    "description": (
        "Summarizes plate-reader growth curves of one sample: per-measurement statistics, "
        "growth rate and doubling time, and text plots."
    ),
    "components": [
        {
            "name": "growth-stats",
            "version": "1.0.0",
            "kind": "python",
            "entrypoint": "datacatalog.demo:compute",
        }
    ],
    "processing_levels": ["2"],
    "accepts": ["text/csv"],
    "produces": ["text/csv", "application/json", "text/plain"],
    "pipeline_type": "analysis",
}

METADATA: list[dict[str, Any]] = [
    {
        "experiment_design_id": "design.demo.growth",
        "title": "Growth of two strains",
        "description": "Wild type against a slow-growing mutant, in M9 glucose at 37 C.",
    },
    {
        "experiment_id": "experiment.demo.1",
        "experiment_design_id": "design.demo.growth",
        "title": "Growth curves, run 1",
        "lab": "Demo Lab",
        "performed": "2024-05-01",
    },
    {
        "sample_id": "sample.demo.1",
        "experiment_id": "experiment.demo.1",
        "title": "wild type",
        "strain": "WT",
        "media": "M9 glucose",
        "temperature_c": 37,
    },
    {
        "sample_id": "sample.demo.2",
        "experiment_id": "experiment.demo.1",
        "title": "slow-growing mutant",
        "strain": "delta-xyz",
        "media": "M9 glucose",
        "temperature_c": 37,
    },
    *(
        {
            "measurement_id": f"measurement.demo.{sample}.{letter}",
            "sample_id": f"sample.demo.{sample}",
            "measurement_type": "PLATE_READER",
            "replicate": replicate,
            "channels": ["od600", "gfp"],
        }
        for sample in (1, 2)
        for replicate, letter in ((1, "a"), (2, "b"))
    ),
]

SAMPLE_ID = "sample.demo.1"
"""The sample the demo's job is computed from."""

INPUT_PATH = "/uploads/demo/growth-measurements.csv"
"""Catalog path of the input CSV on the default storage system."""

JOB_DATA: dict[str, Any] = {
    "parameters": {"bins": 8, "channels": ["od600", "gfp"]},
    "inputs": [INPUT_PATH],
}
"""The job's parameterization (part of its identity)."""

OUTPUTS = ("summary.csv", "report.json", "growth_curve.txt", "gfp_histogram.txt")
CHANNELS = ("od600", "gfp")
INDEX_LEVEL = "2"
INPUT_LEVEL = "0"
AGENT = "datacatalog-demo"

# Growth parameters of the synthetic strains (logistic growth: rate per hour, capacity).
_GROWTH = {"sample.demo.1": (0.62, 1.20), "sample.demo.2": (0.41, 0.85)}
_TIMES = tuple(i * 0.5 for i in range(25))  # 0 h to 12 h every 30 minutes
_OD0 = 0.05


# -- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProvenanceStep:
    """One link in a file's provenance chain."""

    kind: str
    uuid: str
    label: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"kind": self.kind, "uuid": self.uuid, "label": self.label}


@dataclass(frozen=True)
class DemoResult:
    """What the demo did and what it found."""

    pipeline: Pipeline
    pipeline_created: bool
    metadata_created: int
    metadata_updated: int
    job: Job
    job_created: bool
    ran: bool
    indexed: bool
    token: str
    history: list[HistoryEntry]
    files: list[dict[str, Any]]
    provenance: dict[str, list[ProvenanceStep]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "pipeline": self.pipeline.to_dict(),
            "pipeline_created": self.pipeline_created,
            "metadata": {"created": self.metadata_created, "updated": self.metadata_updated},
            "job": self.job.to_dict(),
            "job_created": self.job_created,
            "ran": self.ran,
            "indexed": self.indexed,
            "history": [e.to_dict() for e in self.history],
            "files": self.files,
            "provenance": {
                name: [step.to_dict() for step in chain] for name, chain in self.provenance.items()
            },
            "notes": self.notes,
        }


# -- the run -------------------------------------------------------------------------------


def run(catalog: Catalog, *, progress: Callable[[str], None] | None = None) -> DemoResult:
    """Run the demonstration on ``catalog``; safe to repeat.

    Args:
        catalog: The catalog to work on.
        progress: Called with a line of text at each step.

    Returns:
        The job, its history, its files and their provenance.
    """
    notes: list[str] = []

    def say(line: str) -> None:
        notes.append(line)
        if progress is not None:
            progress(line)

    say(f"catalog: {catalog.store.description}")
    pipeline, pipeline_created = catalog.pipelines.register(PIPELINE)
    say(
        f"{'registered' if pipeline_created else 'found registered'} pipeline "
        f"{pipeline.id} ({pipeline.uuid})"
    )
    loaded = catalog.metadata.load(METADATA)
    say(
        f"loaded {len(METADATA)} metadata documents "
        f"({loaded.created} created, {loaded.updated} updated)"
    )

    storage = catalog.storage.get(None)
    _write(storage, INPUT_PATH, measurements_csv().encode("utf-8"))
    # The raw measurements are catalogued too, so the lineage runs from them to the products.
    source = catalog.indexing.index_if_exists(
        INPUT_PATH, storage_system=storage.name, level=INPUT_LEVEL, fixity=True
    )
    assert source is not None  # written just above
    say(
        f"input {storage.name}:{INPUT_PATH} is in place, catalogued as file {source.uuid} "
        f"(level {source.level}, sha256 {str(source.sha256)[:12]}…)"
    )

    plan = catalog.jobs.plan(
        pipeline=pipeline.uuid,
        metadata={"sample_id": SAMPLE_ID},
        data=JOB_DATA,
        archive_system=storage.name,
        agent=AGENT,
        task="growth statistics",
    )
    actor = Actor.current(agent=AGENT)
    job, job_created = catalog.jobs.create(plan, actor=actor)
    if job_created:
        say(f"created job {job.uuid}")
    else:
        say(f"found the existing job {job.uuid} ({job.state}); nothing is duplicated")

    ran = False
    if job.state in ("CREATED", "RUNNING"):
        job = _compute(catalog, job, storage, actor, say)
        ran = True
    elif not job_created:
        say(f"the job is {job.state}: its outputs are already computed")

    indexed = False
    if job.state in ("FINISHED", "INDEXING") and (ran or not catalog.indexing.files(job.uuid)):
        say(f"indexing the outputs of job {job.uuid} with sha256 fixity")
        # Indexing sends its index/indexed events as the catalog's own actor; a view of
        # the same store acting as the demo keeps every event of the run the demo's.
        as_demo = Catalog(
            catalog.store, settings=catalog.settings, storage=catalog.storage, actor=actor
        )
        as_demo.indexing.index(job.uuid, fixity=True, transition=True, level=INDEX_LEVEL)
        indexed = True

    job = catalog.jobs.get(job.uuid)
    files = [record.to_dict() for record in catalog.indexing.files(job.uuid)]
    return DemoResult(
        pipeline=pipeline,
        pipeline_created=pipeline_created,
        metadata_created=loaded.created,
        metadata_updated=loaded.updated,
        job=job,
        job_created=job_created,
        ran=ran,
        indexed=indexed,
        token=catalog.jobs.job_token(job.uuid),
        history=catalog.jobs.history(job.uuid),
        files=files,
        provenance={str(f["name"]): provenance_chain(catalog, f) for f in files},
        notes=notes,
    )


def _compute(
    catalog: Catalog,
    job: Job,
    storage: StorageSystem,
    actor: Actor,
    say: Callable[[str], None],
) -> Job:
    """Run the pipeline's computation for ``job``, reporting events as it goes."""
    # The number of times an administrator re-armed the job keeps each attempt's
    # idempotency keys apart, so a reset job really runs again.
    attempt = sum(1 for e in catalog.jobs.history(job.uuid) if e.name == "ready")

    def send(event: str, step: str, data: Mapping[str, Any] | None = None) -> Job:
        key = f"demo:{attempt}:{step}"
        return catalog.jobs.send(job.uuid, event, data=data, event_id=key, actor=actor).job

    send("run", "run", {"step": "start", "sample": SAMPLE_ID})
    say(f"job {job.uuid} is RUNNING")

    with storage.open(INPUT_PATH) as stream:
        rows = read_measurements(stream.read().decode("utf-8"), sample_id=SAMPLE_ID)
    send("update", "read", {"step": "read input", "progress": 0.25, "rows": len(rows)})
    say(f"read {len(rows)} rows of {SAMPLE_ID} from {INPUT_PATH}")

    parameters = job.data.get("parameters", {})
    bins = int(parameters.get("bins", 8))
    outputs = compute(rows, job_uuid=job.uuid, sample_id=SAMPLE_ID, bins=bins)
    send("update", "computed", {"step": "statistics", "progress": 0.5})
    say("computed per-measurement statistics, growth rate and doubling time")

    for count, (name, content) in enumerate(sorted(outputs.items()), start=1):
        _write(storage, f"{job.archive_path}/{name}", content.encode("utf-8"))
        send(
            "update",
            f"wrote:{name}",
            {"step": f"wrote {name}", "progress": round(0.5 + 0.5 * count / len(outputs), 3)},
        )
    say(f"wrote {len(outputs)} files to {storage.name}:{job.archive_path}")

    finished = send("finish", "finish", {"outputs": sorted(outputs)})
    say(f"job {job.uuid} is {finished.state}")
    return finished


def _write(storage: StorageSystem, path: str, content: bytes) -> None:
    """Write ``content`` to ``path`` on ``storage`` unless it already holds exactly that."""
    backend = storage.resolve(path)
    parent = path.rsplit("/", 1)[0] or "/"
    storage.makedirs(parent)
    if storage.exists(path):
        with storage.open(path) as stream:
            if stream.read() == content:
                return
    with storage.fs.open(backend, "wb") as handle:
        handle.write(content)


# -- the computation (pure) ----------------------------------------------------------------


def measurements_csv() -> str:
    """The input: OD600 and GFP readings of every measurement, every 30 minutes.

    Synthetic logistic growth with seeded noise, so the bytes are the same every time.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["sample_id", "measurement_id", "time_h", "od600", "gfp"])
    for doc in METADATA:
        if "measurement_id" not in doc:
            continue
        sample, measurement = doc["sample_id"], doc["measurement_id"]
        rate, capacity = _GROWTH[sample]
        noise = random.Random(measurement)
        for hours in _TIMES:
            od = capacity / (1 + (capacity - _OD0) / _OD0 * math.exp(-rate * hours))
            od *= 1 + noise.gauss(0, 0.015)
            gfp = 40 + 950 * od * (1 + noise.gauss(0, 0.03))
            writer.writerow([sample, measurement, f"{hours:.1f}", f"{od:.4f}", f"{gfp:.1f}"])
    return out.getvalue()


def read_measurements(text: str, *, sample_id: str) -> list[dict[str, Any]]:
    """The rows of ``sample_id`` in the input CSV, with numbers parsed."""
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        if row["sample_id"] != sample_id:
            continue
        rows.append(
            {
                "measurement_id": row["measurement_id"],
                "time_h": float(row["time_h"]),
                "od600": float(row["od600"]),
                "gfp": float(row["gfp"]),
            }
        )
    return rows


def compute(
    rows: Sequence[Mapping[str, Any]], *, job_uuid: str, sample_id: str, bins: int = 8
) -> dict[str, str]:
    """The pipeline's outputs for one sample's rows: file name -> text content."""
    by_measurement: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_measurement.setdefault(str(row["measurement_id"]), []).append(row)

    stats: list[dict[str, Any]] = []
    for measurement, items in sorted(by_measurement.items()):
        for channel in CHANNELS:
            values = [float(r[channel]) for r in items]
            stats.append({"measurement_id": measurement, "channel": channel, **_describe(values)})
    for channel in CHANNELS:
        values = [float(r[channel]) for r in rows]
        stats.append({"measurement_id": "all", "channel": channel, **_describe(values)})

    times = sorted({float(r["time_h"]) for r in rows})
    mean_od = [
        statistics.fmean(float(r["od600"]) for r in rows if float(r["time_h"]) == t) for t in times
    ]
    rate = max(
        (math.log(mean_od[i + 1]) - math.log(mean_od[i])) / (times[i + 1] - times[i])
        for i in range(len(times) - 1)
    )
    report = {
        "job": job_uuid,
        "sample_id": sample_id,
        "measurements": sorted(by_measurement),
        "rows": len(rows),
        "max_growth_rate_per_h": round(rate, 4),
        "doubling_time_h": round(math.log(2) / rate, 3),
        "final_od600": round(mean_od[-1], 4),
        "statistics": stats,
    }

    summary = io.StringIO()
    columns = ["measurement_id", "channel", "n", "mean", "stdev", "min", "median", "max"]
    writer = csv.DictWriter(summary, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(stats)
    gfp = [float(r["gfp"]) for r in rows]
    return {
        "summary.csv": summary.getvalue(),
        "report.json": json.dumps(report, indent=2, sort_keys=True) + "\n",
        "growth_curve.txt": text_plot(times, mean_od, title=f"mean OD600 of {sample_id}"),
        "gfp_histogram.txt": text_histogram(gfp, bins=bins, title=f"GFP of {sample_id}"),
    }


def _describe(values: Sequence[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "mean": round(statistics.fmean(values), 4),
        "stdev": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
        "min": round(min(values), 4),
        "median": round(statistics.median(values), 4),
        "max": round(max(values), 4),
    }


def text_plot(xs: Sequence[float], ys: Sequence[float], *, title: str, height: int = 12) -> str:
    """A plain-text scatter plot of ``ys`` against ``xs`` (one column per point)."""
    low, high = min(ys), max(ys)
    span = (high - low) or 1.0
    levels = [round((y - low) / span * (height - 1)) for y in ys]
    lines = [title]
    for row in range(height - 1, -1, -1):
        label = f"{low + span * row / (height - 1):7.3f} |"
        lines.append(label + "".join(" * " if level == row else "   " for level in levels))
    lines.append(" " * 8 + "+" + "---" * len(xs))
    ticks = "".join(f"{x:<3.0f}" if i % 4 == 0 else "   " for i, x in enumerate(xs))
    lines.append(" " * 9 + ticks.rstrip())
    lines.append(" " * 9 + "time (h)")
    return "\n".join(line.rstrip() for line in lines) + "\n"


def text_histogram(values: Sequence[float], *, bins: int, title: str, width: int = 40) -> str:
    """A plain-text histogram of ``values`` in ``bins`` equal-width bins."""
    bins = max(1, bins)
    low, high = min(values), max(values)
    step = (high - low) / bins or 1.0
    counts = [0] * bins
    for value in values:
        counts[min(bins - 1, int((value - low) / step))] += 1
    biggest = max(counts)
    lines = [title]
    for i, count in enumerate(counts):
        start = low + i * step
        bar = "#" * round(count / biggest * width) if biggest else ""
        lines.append(f"{start:8.1f} - {start + step:8.1f} | {bar} {count}".rstrip())
    return "\n".join(lines) + "\n"


# -- provenance ----------------------------------------------------------------------------


def provenance_chain(catalog: Catalog, record: Mapping[str, Any]) -> list[ProvenanceStep]:
    """File -> job -> pipeline -> metadata, up to the experiment design."""
    chain = [ProvenanceStep("file", str(record["uuid"]), str(record["name"]))]
    for job_uuid in record.get("generated_by") or []:
        if kind_of(job_uuid) != "pipelinejob":
            continue
        try:
            job = catalog.jobs.get(job_uuid)
        except DataCatalogError:
            chain.append(ProvenanceStep("pipelinejob", job_uuid, "(not in the catalog)"))
            continue
        chain.append(ProvenanceStep("pipelinejob", job.uuid, job.task or job.state))
        pipeline = catalog.pipelines.get(job.pipeline_uuid)
        chain.append(ProvenanceStep("pipeline", pipeline.uuid, pipeline.id))
        chain.extend(_metadata_chain(catalog, job.child_of))
    return chain


def _metadata_chain(catalog: Catalog, uuids: Sequence[str]) -> list[ProvenanceStep]:
    steps: list[ProvenanceStep] = []
    current = list(uuids)
    seen: set[str] = set()
    while current:
        parents: list[str] = []
        for uuid in current:
            kind = kind_of(uuid)
            if uuid in seen or kind not in LEVELS:
                continue
            seen.add(uuid)
            entity = catalog.metadata.get(kind, uuid)
            steps.append(ProvenanceStep(kind, entity.uuid, entity.id))
            parents.extend(entity.child_of)
        current = parents
    return steps
