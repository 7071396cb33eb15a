"""Job and admin tokens for one deployment: the secret, issuing and checking tokens.

The secret is read (or, when none is configured, generated into the data dir) on first
use, so opening a catalog that is only read never needs one.
"""

from __future__ import annotations

from datacatalog import tokens
from datacatalog.identifiers import require_kind
from datacatalog.settings import Settings


class Credentials:
    """Issues and checks the tokens of one deployment."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._secret: str | None = None

    @property
    def secret(self) -> str:
        """The deployment secret (read or generated once)."""
        if self._secret is None:
            self._secret = self.settings.resolve_secret()
        return self._secret

    def job_token(self, job_uuid: str) -> str:
        """The token that authorizes events for ``job_uuid``."""
        return tokens.job_token(self.secret, require_kind(job_uuid, "pipelinejob", what="job"))

    def admin_token(self) -> str:
        """An admin token for the current window."""
        return tokens.admin_token(self.secret, lifetime=self.settings.admin_token_lifetime)

    def check_admin(self, token: str | None, *, action: str) -> None:
        """Raise unless ``token`` is a valid admin token."""
        tokens.check_admin_token(
            self.secret, token, lifetime=self.settings.admin_token_lifetime, action=action
        )

    def webhook_url(self, job_uuid: str, *, base_url: str | None = None) -> str:
        """``<service>/jobs/<uuid>/events?token=<job token>`` (docs/service.md, "Events")."""
        base = (base_url or self.settings.service_url).rstrip("/")
        return f"{base}/jobs/{job_uuid}/events?token={self.job_token(job_uuid)}"
