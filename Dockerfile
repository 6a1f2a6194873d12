# The masterplan server. Mirrors the README's install: the project from
# pyproject.toml into a virtual environment, then `masterplan serve`.
FROM python:3.11-slim

RUN useradd --create-home --uid 10001 masterplan
WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY protos ./protos
COPY server ./server
COPY tenancy ./tenancy
COPY connector ./connector
COPY client ./client
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir .
ENV PATH=/opt/venv/bin:$PATH

USER masterplan
WORKDIR /home/masterplan
EXPOSE 50151
# The admin key comes from a mounted file or MASTERPLAN_ADMIN_KEY; there is no default.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
  CMD python -c "import grpc,sys; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; \
s=g.HealthStub(grpc.insecure_channel('127.0.0.1:50151')); \
sys.exit(0 if s.Check(h.HealthCheckRequest(), timeout=3).status == h.HealthCheckResponse.SERVING else 1)"
CMD ["masterplan", "serve", "--host", "0.0.0.0", "--port", "50151", "--registry", "sqlite:////home/masterplan/registry.db"]
