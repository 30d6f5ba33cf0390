FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN useradd --create-home --uid 10001 evenhand
WORKDIR /app

COPY pyproject.toml README.md alembic.ini ./
COPY evenhand ./evenhand
COPY kernel ./kernel
COPY api ./api
COPY worker ./worker
RUN pip install .

USER evenhand
EXPOSE 8000
CMD ["evenhand", "api", "--host", "0.0.0.0", "--port", "8000"]
