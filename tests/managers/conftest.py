"""Fixtures of the compatibility layer's tests: a catalog with one pipeline and metadata."""

from __future__ import annotations

from pathlib import Path

import pytest

from datacatalog.catalog import Catalog
from datacatalog.identifiers import typed_uuid
from datacatalog.settings import Settings
from datacatalog.store import Store
from tests.support.compat import SERVICE_URL


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.load(env={}, data_dir=tmp_path, secret="s" * 32)


@pytest.fixture
def catalog(store: Store, settings: Settings) -> Catalog:
    return Catalog(store, settings=settings)


@pytest.fixture
def pipeline_uuid(catalog: Catalog) -> str:
    pipeline, _ = catalog.pipelines.register(
        {"id": "compat-align", "components": [{"image": "aligner:1.2"}]}
    )
    return pipeline.uuid


@pytest.fixture
def metadata(catalog: Catalog) -> dict[str, str]:
    catalog.metadata.load(
        [
            {"experiment_design_id": "design.compat"},
            {"experiment_id": "experiment.compat.1", "experiment_design_id": "design.compat"},
            {"sample_id": "sample.compat.1", "experiment_id": "experiment.compat.1"},
            {"sample_id": "sample.compat.2", "experiment_id": "experiment.compat.1"},
            {"measurement_id": "measurement.compat.1", "sample_id": "sample.compat.1"},
        ]
    )
    return {
        "experiment": typed_uuid("experiment.compat.1", "experiment"),
        "sample1": typed_uuid("sample.compat.1", "sample"),
        "sample2": typed_uuid("sample.compat.2", "sample"),
        "measurement": typed_uuid("measurement.compat.1", "measurement"),
    }


@pytest.fixture
def pipelines(pipeline_uuid: str) -> dict[str, str]:
    return {"pipeline_uuid": pipeline_uuid, "service_url": SERVICE_URL}
