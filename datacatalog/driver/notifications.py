"""A stage driver's notifications: handed to ``notify``, the telling ones recorded.

Every notification goes to the ``notify`` callback (what it raises never changes the
outcome). Those that explain trouble (an error, a retry, a timeout, a cancel) are also
recorded in the job history as ``update`` events, at most
:data:`MAX_RECORDED_NOTIFICATIONS` per life-cycle and only while the job runs under this
driver; the ``run`` and terminal events already say when the stage started, ended and how.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from datacatalog.clock import utc_now
from datacatalog.driver.state import DriverState
from datacatalog.driver.values import Notification, cut
from datacatalog.errors import DataCatalogError

MAX_RECORDED_NOTIFICATIONS = 50  # per life-cycle, as update events in the job history
RECORDED = frozenset({"error", "retry_scheduled", "timeout", "cancel_requested"})
MAX_NOTIFICATION_MESSAGE = 500


class Notifying(DriverState):
    """Sends the driver's notifications."""

    def _emit(
        self,
        kind: str,
        phase: str | None,
        message: str,
        *,
        attempt: int | None = None,
        error: dict[str, Any] | None = None,
        record: bool = True,
    ) -> None:
        """Hand a notification to ``notify`` and record it in the job history (bounded)."""
        note = Notification(
            kind=kind,
            phase=phase,
            message=cut(message, MAX_NOTIFICATION_MESSAGE),
            date=utc_now(),
            attempt=attempt,
            error=error,
        )
        if self._notify_callback is not None:
            # What notify raises never changes the outcome.
            with suppress(Exception):
                self._notify_callback(self, note)
        # Recorded only while the job runs under this driver (no events once it ended).
        record = record and kind in RECORDED and not self._deciding and self._lease_lost is None
        if record and self._recorded < MAX_RECORDED_NOTIFICATIONS:
            self._recorded += 1
            with suppress(DataCatalogError):  # a note lost is no reason to fail the stage
                self.catalog.jobs.send(
                    self._source.job_uuid,
                    "update",
                    data={"driver": {"id": self.id, **note.to_dict()}},
                    event_id=f"{self.id}:note-{self._recorded}",
                    token=self._source.token,
                )


__all__ = ["MAX_NOTIFICATION_MESSAGE", "MAX_RECORDED_NOTIFICATIONS", "RECORDED", "Notifying"]
