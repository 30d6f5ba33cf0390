FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN useradd --create-home --uid 10001 evenhand
WORKDIR /app

# the runtime dependencies at the versions CI tested (requirements-prod.lock: requirements.lock
# without the dev extra, hashes checked), then the package alone
COPY requirements-prod.lock ./
RUN pip install --require-hashes -r requirements-prod.lock
COPY pyproject.toml README.md alembic.ini ./
COPY evenhand ./evenhand
COPY kernel ./kernel
COPY api ./api
COPY worker ./worker
RUN pip install --no-deps .

USER evenhand
EXPOSE 8000
CMD ["evenhand", "api", "--host", "0.0.0.0", "--port", "8000"]
