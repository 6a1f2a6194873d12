# The masterplan server. Mirrors the README's install: the project from
# pyproject.toml into a virtual environment, then `masterplan serve`. The
# dependencies are installed at the versions of the lock, constraints.txt
# (written by `python .ci/lock.py`; CI tests on the same versions).
FROM python:3.11-slim

RUN useradd --create-home --uid 10001 masterplan
WORKDIR /app
COPY pyproject.toml README.md LICENSE constraints.txt ./
COPY protos ./protos
COPY server ./server
COPY tenancy ./tenancy
COPY connector ./connector
COPY client ./client
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir -c constraints.txt .
ENV PATH=/opt/venv/bin:$PATH

# The tenant registry (SQLite: tenants, key hashes) lives on a volume, so that
# tenants and their keys outlive the container.
RUN mkdir -p /var/lib/masterplan && chown masterplan:masterplan /var/lib/masterplan
VOLUME /var/lib/masterplan

USER masterplan
WORKDIR /home/masterplan
# The server (CMD) and its health check (HEALTHCHECK) read the same settings:
# the port here, and MASTERPLAN_TLS_CERT/MASTERPLAN_TLS_KEY when TLS is on.
ENV MASTERPLAN_PORT=50151
EXPOSE 50151
# The admin key comes from a mounted file or MASTERPLAN_ADMIN_KEY; there is no
# default. TLS: mount the certificate and key and set MASTERPLAN_TLS_CERT and
# MASTERPLAN_TLS_KEY. Without TLS the server refuses to listen on 0.0.0.0
# unless MASTERPLAN_INSECURE=1 says that TLS ends in front of it (a load
# balancer, a service mesh). See docs/operations.md, "The container image".
# Health is NOT_SERVING until the engine's kernels are compiled (seconds, once
# per container): the start period covers that.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD ["masterplan", "health"]
CMD ["masterplan", "serve", "--host", "0.0.0.0", "--registry", "sqlite:////var/lib/masterplan/registry.db"]
