# computematch: slim Python, non-root, migrate then serve.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /srv/computematch

COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
RUN pip install . && useradd --create-home --uid 10001 computematch \
    && mkdir -p var && chown computematch var

USER computematch
EXPOSE 8000
# DATABASE_URL selects the database (PostgreSQL in production). The edge's limits are
# `computematch serve`'s (app/cli.py, uvicorn_options): h11 bounds a request's head to
# 16 KiB, idle connections close after 5 s, a worker takes on at most
# LIMIT_CONCURRENCY connections and requests (then 503). Put a proxy in front
# (deploy/nginx.conf): it also bounds how long a client may take to send its head.
# uvicorn believes X-Forwarded-For from FORWARDED_ALLOW_IPS (the proxy; default 127.0.0.1).
CMD ["sh", "-c", "alembic upgrade head && exec uvicorn app.main:app --host 0.0.0.0 --port 8000 --workers ${WEB_CONCURRENCY:-2} --http h11 --h11-max-incomplete-event-size 16384 --timeout-keep-alive 5 --limit-concurrency ${LIMIT_CONCURRENCY:-1000} --proxy-headers --no-access-log"]
