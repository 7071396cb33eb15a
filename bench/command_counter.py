"""Counting the commands a pymongo client sends: the round trips a benchmark reports."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from pymongo import monitoring


class CommandCounter(monitoring.CommandListener):
    """Counts the commands a client sends, by name, while ``active``.

    Args:
        names: Count only these commands (``find``, ``aggregate`` ...); None counts all.
        active: Whether counting starts at once (set ``active`` to pause and resume).
    """

    def __init__(self, names: Iterable[str] | None = None, *, active: bool = True) -> None:
        self.names = None if names is None else frozenset(names)
        self.active = active
        self.counts: Counter[str] = Counter()
        self.seconds = 0.0
        """Time the counted commands took, as the driver measured each (send to reply)."""

    @property
    def total(self) -> int:
        """Commands counted so far."""
        return sum(self.counts.values())

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.active and (self.names is None or event.command_name in self.names):
            self.counts[event.command_name] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._took(event.command_name, event.duration_micros)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._took(event.command_name, event.duration_micros)

    def _took(self, name: str, micros: int) -> None:
        if self.active and (self.names is None or name in self.names):
            self.seconds += micros / 1e6
