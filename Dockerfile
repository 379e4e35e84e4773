# colorbot: one image for the bot, the worker and the trainer.
#
#   docker build -t colorbot:cpu .                                   # CPU torch (bot, CPU worker)
#   docker build -t colorbot:cuda --build-arg TORCH_VARIANT=cu126 .   # CUDA torch (GPU worker, trainer)
#
# TORCH_VARIANT is a wheel index of download.pytorch.org: cpu, cu126, cu128 ... The CUDA
# wheels bring their own CUDA runtime; the host needs only the NVIDIA driver and the
# NVIDIA Container Toolkit.
ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim

ARG TORCH_VARIANT=cpu
ARG TORCH_VERSION=2.13.0
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    COLORBOT_DATA=/data

WORKDIR /app

# torch first, from its own index, so the project's install below keeps it (the big,
# rarely changing layer stays cached when the code changes).
RUN pip install "torch==${TORCH_VERSION}" --index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}"

COPY pyproject.toml README.md ./
COPY colorbot ./colorbot
COPY models ./models
COPY bot ./bot
COPY db ./db
COPY training ./training
RUN pip install . \
    && useradd --create-home --uid 10001 colorbot \
    && mkdir -p /data \
    && chown colorbot /data

USER colorbot
VOLUME ["/data"]
ENTRYPOINT ["colorbot"]
CMD ["run"]
