# The dashboard for a shared server: locked dependencies, a non-root user, and a health check that renders the
# first view through the server (not Streamlit's bare /_stcore/health, which says "ok" before anything is computed).
#   docker build -t audit-metrics .
#   docker compose up -d          # compose.yaml: catalogue and data mounted read-only, sign-in via secrets
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore \
    UV_PROJECT_ENVIRONMENT=/opt/venv UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_NO_CACHE=1 \
    PATH=/opt/venv/bin:$PATH
RUN pip install "uv==0.13.9"

WORKDIR /app
# Dependencies first, exactly as locked (this layer is reused while only the code changes).
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-install-project --no-editable
COPY audit_metrics ./audit_metrics
COPY app.py indicators.yaml indicators.schema.json ./
COPY sample_data ./sample_data
COPY .streamlit/config.toml ./.streamlit/config.toml
RUN uv sync --frozen --no-editable && pip uninstall -y -q uv
# the server imports /app's own copy (its working folder), which the non-root user cannot write bytecode beside:
# compiled here, not from source at every start
RUN python -m compileall -q audit_metrics app.py

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin audit
USER audit
ENV HOME=/home/audit STREAMLIT_SERVER_HEADLESS=true STREAMLIT_SERVER_ADDRESS=0.0.0.0 STREAMLIT_SERVER_PORT=8501 \
    STREAMLIT_SERVER_FILE_WATCHER_TYPE=none AUDIT_METRICS_CATALOGUE=/app/indicators.yaml
EXPOSE 8501
# Ready = a fresh session rendered the Overview in full with no error (python -m audit_metrics.ui.readiness).
HEALTHCHECK --interval=30s --timeout=40s --start-period=180s --retries=3 \
    CMD ["python", "-m", "audit_metrics.ui.readiness", "--timeout", "30"]
# `streamlit run app.py` with the dashboard's code imported before the server listens (audit_metrics/ui/serve.py)
CMD ["python", "-m", "audit_metrics.ui.serve"]
