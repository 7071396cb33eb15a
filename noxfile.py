"""The version matrix: the in-memory test suite on every Python version the package supports.

The versions are the ``Programming Language :: Python :: 3.X`` classifiers of
pyproject.toml, so adding a version there adds its session here::

    nox                       # every supported version found on PATH (others are skipped)
    nox -s tests-3.13         # one version
    nox -s tests-3.11 -- -k jobs -x   # arguments after -- go to pytest
    nox -db uv                # uv instead of virtualenv and pip (uv must be installed)

Each session builds a fresh environment with the package and its test extra, then runs
the suite on the in-memory engine with two workers. The real-server lane and the fault
suite run once, on the main interpreter (``make test``, ``make test-faults``).
"""

from __future__ import annotations

import nox

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHONS = nox.project.python_versions(PYPROJECT)

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The in-memory suite on one Python version."""
    session.install("-e", ".[test]")
    session.run(
        "python",
        "-m",
        "pytest",
        "-q",
        "-n",
        "2",
        *session.posargs,
        # CI=true would demand the real-server lane, which this matrix leaves out.
        env={"DATACATALOG_TEST_ENGINES": "memory", "CI": ""},
    )
