"""The zero-configuration catalog's server: a ``mongod`` the product runs in the data dir.

With no ``DATACATALOG_MONGODB_URI``, the catalog lives on a one-member replica set in
``<data dir>/mongo/``, listening on a Unix socket (or loopback TCP on a saved port when the
socket path is too long). Every process of the user shares it; it keeps running between
commands and stops after an idle time without clients, or on ``datacatalog local stop``.
Processes coordinate only through files in that folder (locks and ``state.json``).

Modules: :mod:`~datacatalog.local.binary` (finding ``mongod``),
:mod:`~datacatalog.local.launcher` (the command line and the forking launch of every
mongod the project runs, the test servers' too),
:mod:`~datacatalog.local.processes` (is it alive, is it ours, stopping it),
:mod:`~datacatalog.local.ports` (free loopback ports),
:mod:`~datacatalog.local.layout` (files, state, locks),
:mod:`~datacatalog.local.manager` (start, attach, stop, status),
:mod:`~datacatalog.local.watcher` (idle stop),
:mod:`~datacatalog.local.failures` (one clear error per start failure),
:mod:`~datacatalog.local.filesystem` (refusing network filesystems).
"""

from datacatalog.local.failures import BinaryUnusableError, LocalServerError
from datacatalog.local.manager import DEFAULT_IDLE_TIMEOUT, LocalServer

__all__ = ["DEFAULT_IDLE_TIMEOUT", "BinaryUnusableError", "LocalServer", "LocalServerError"]
