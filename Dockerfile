# The datacatalog webhook service. Built and run by docker-compose.yml; configure it with
# DATACATALOG_* environment variables (see docs/service.md).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml ./
COPY schemas ./schemas
COPY datacatalog ./datacatalog
RUN pip install . \
    && rm -rf /src \
    && useradd --system --create-home --home-dir /home/datacatalog datacatalog \
    && mkdir -p /var/lib/datacatalog \
    && chown datacatalog:datacatalog /var/lib/datacatalog

# The data dir holds the default local archive (and, without a MongoDB URI, the embedded
# catalog); mount a volume here to keep it.
ENV DATACATALOG_DATA_DIR=/var/lib/datacatalog
USER datacatalog
WORKDIR /home/datacatalog
EXPOSE 8750

HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8750/healthz', timeout=4).status != 200)"]

CMD ["datacatalog", "serve", "--host", "0.0.0.0", "--port", "8750"]
