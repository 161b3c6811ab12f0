# relayflow bridge and worker image (compose/ runs both from it).
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml README.md ./
COPY relayflow ./relayflow
COPY bridge ./bridge
COPY workflows ./workflows
COPY activities ./activities
COPY schemas ./schemas
COPY failpoints ./failpoints
RUN pip install --no-cache-dir . && useradd --create-home relayflow && mkdir /data && chown relayflow /data
USER relayflow
ENV RELAYFLOW_DATA_DIR=/data
# Bridge and worker HTTP endpoints (/metrics, /health/*), the Temporal SDK's metrics.
EXPOSE 9400 9401 9402
ENTRYPOINT ["relayflow"]
CMD ["--help"]
