"""A catalog for populate tests: one pipeline and an experiment of ``samples`` samples."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datacatalog.catalog import Catalog
from datacatalog.settings import Settings
from datacatalog.store import Store

PIPELINE = {"id": "tests.populate", "components": [{"image": "populate:1"}]}


def metadata(samples: int, measurements: int = 0) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = [
        {"experiment_design_id": "design.pop"},
        {"experiment_id": "E", "experiment_design_id": "design.pop"},
        {"experiment_id": "EMPTY", "experiment_design_id": "design.pop"},
    ]
    for i in range(samples):
        docs.append({"sample_id": f"s{i:04d}", "experiment_id": "E"})
        docs += [
            {"measurement_id": f"m{i:04d}.{k}", "sample_id": f"s{i:04d}"}
            for k in range(measurements)
        ]
    return docs


@dataclass
class World:
    catalog: Catalog
    store: Store
    root: Path

    def populate(self, **options: Any) -> Any:
        options.setdefault("pipeline", "tests.populate")
        options.setdefault("metadata", {"experiment_id": "E"})
        options.setdefault("level", "sample")
        options.setdefault("workers", 2)
        return self.catalog.jobs.populate(**options)

    def states(self) -> Counter[str]:
        return Counter(d["state"] for d in self.store.find("job", {}, projection={"state": 1}))


def make_world(store: Store, root: Path, samples: int = 6) -> World:
    settings = Settings.load(env={}, data_dir=root / "data", secret="p" * 32)
    catalog = Catalog(store, settings=settings)
    catalog.pipelines.register(PIPELINE)
    catalog.metadata.load(metadata(samples))
    return World(catalog, store, root)
