"""Things that are started and stopped, and run for the length of a ``with`` block."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self


class StartStop(ABC):
    """Started on entering a ``with`` block (the block gets the started object), stopped
    on leaving it, however it ends."""

    @abstractmethod
    def start(self) -> object:
        """Start (and return the started object)."""

    @abstractmethod
    def stop(self) -> None:
        """Stop, releasing what :meth:`start` took."""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
