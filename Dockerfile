# latentcast: the API server, its embedded worker and the CLI in one image.
#   docker build -t latentcast .                                  # CPU wheels of torch
#   docker build --build-arg TORCH_VARIANT=cu128 -t latentcast:cuda .   # CUDA 12.8 wheels of torch
#   docker run -p 8000:8000 -v latentcast-data:/data latentcast
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
# Which PyTorch wheel index to install torch from: cpu (default) or a CUDA tag such as cu128.
ARG TORCH_VARIANT=cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/latentcast
COPY pyproject.toml constraints.txt README.md ./
COPY service ./service
COPY model ./model
COPY migrations ./migrations
COPY latentcast ./latentcast
# torch first from the chosen index, pinned like everything else; then the project under constraints.txt
# (whose torch==2.13.0 the installed CPU or CUDA build already satisfies).
RUN /opt/latentcast/bin/pip install --index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}" torch==2.13.0 \
    && /opt/latentcast/bin/pip install -c constraints.txt .

FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
RUN groupadd --system --gid 10001 latentcast \
    && useradd --system --uid 10001 --gid latentcast --home-dir /data --no-create-home latentcast \
    && mkdir -p /data && chown latentcast:latentcast /data
COPY --from=build /opt/latentcast /opt/latentcast
ENV PATH=/opt/latentcast/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    LATENTCAST_DATA_DIR=/data \
    LATENTCAST_PORT=8000
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('LATENTCAST_PORT', '8000')}/healthz\", timeout=4)"]
CMD ["latentcast", "serve", "--host", "0.0.0.0"]
