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
# DATABASE_URL selects the database (PostgreSQL in production).
CMD ["sh", "-c", "alembic upgrade head && exec uvicorn app.main:app --host 0.0.0.0 --port 8000 --workers ${WEB_CONCURRENCY:-2} --proxy-headers"]
