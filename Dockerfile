# Production image: gunicorn behind a TLS-terminating reverse proxy that forwards the client certificate.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MFT_DATA_DIR=/var/lib/mft \
    MFT_STATIC_ROOT=/app/staticfiles

WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY . .
RUN useradd --system --home-dir /var/lib/mft --create-home mft \
    && MFT_SECRET_KEY=build-time-only-not-a-secret-0123456789abcdef \
       MFT_KEY_ENCRYPTION_KEY=build-time-only-not-a-secret-0123456789abcdef \
       MFT_DATA_DIR=/tmp/build DATABASE_URL=sqlite:////tmp/build/db.sqlite3 \
       python manage.py collectstatic --noinput -v0 \
    && rm -rf /tmp/build

USER mft
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"
# The proxy runs in another container, so the app listens on TCP: set MFT_PROXY_SECRET (or
# MFT_PROXY_SECRET_FILE) to the secret the proxy sends, and MFT_TRUSTED_PROXIES to its address.
ENV MFT_BIND=0.0.0.0:8000
CMD ["sh", "-c", "python manage.py migrate --noinput && exec gunicorn -c mft/gunicorn_proxy.py mft.wsgi"]
