"""datacatalog: a provenance-tracking pipeline job manager backed by MongoDB.

Each run of a pipeline on some inputs is a *job* whose identity is a deterministic
UUID5 of what it computes. The package records jobs, their state-machine history,
the metadata and files they were computed from, and the outputs they produced, so
any file can be traced back to the pipeline, parameters and samples behind it.

The modules are laid out one concept per file; ``docs/ARCHITECTURE.md`` draws the map.
"""

__all__ = ["__version__"]

# Read statically by the build (``[tool.setuptools.dynamic]`` in pyproject.toml), so it
# must stay a plain string literal.
__version__ = "0.1.0"
