"""The lineage graph and export routes, importable from here as before.

They are defined in :mod:`datacatalog.service.routes.lineage`.
"""

from __future__ import annotations

from datacatalog.service.routes.lineage import (
    MEDIA_TYPES,
    GraphEdgeModel,
    GraphNodeModel,
    LineageGraphModel,
    Relation,
    router,
)

__all__ = [
    "MEDIA_TYPES",
    "GraphEdgeModel",
    "GraphNodeModel",
    "LineageGraphModel",
    "Relation",
    "router",
]
