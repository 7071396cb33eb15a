"""Whether live OpenLineage emission is configured, answered without loading its client.

The variables are read by :func:`datacatalog.provenance.emitter.from_environment`; a
catalog asks :func:`configured` first, so that a process which emits nothing never
imports the OpenLineage client or the provenance package (``datacatalog jobs show``
starts faster for it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

URL_ENV = "DATACATALOG_OPENLINEAGE_URL"
FILE_ENV = "DATACATALOG_OPENLINEAGE_FILE"
NAMESPACE_ENV = "DATACATALOG_OPENLINEAGE_NAMESPACE"


def configured(env: Mapping[str, str] | None = None) -> bool:
    """True when ``DATACATALOG_OPENLINEAGE_URL`` or ``_FILE`` is set and not empty."""
    values = os.environ if env is None else env
    return bool(values.get(URL_ENV) or values.get(FILE_ENV))
