"""What the compatibility layer's tests share: the job service's address."""

from __future__ import annotations

SERVICE_URL = "https://jobs.example.org"
