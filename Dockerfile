# The s3ferry worker image.
#
#   docker build -t s3ferry:0.1.0 .
#   docker run --rm s3ferry:0.1.0 worker --queue sqs://NAME --source-profile source --dest-profile dest
#
# See docs/deploy.md for AWS Batch, ECS and EC2 spot. `docker stop` sends SIGTERM: the worker
# takes no new task, finishes (or gives back) its running tasks within --stop-timeout
# seconds (default 30) and exits 0, so give the container more than that:
# `docker stop -t 40`, ECS `stopTimeout`, systemd `TimeoutStopSec`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Only what `pip install .` needs (.dockerignore keeps the rest out of the context).
WORKDIR /tmp/s3ferry-src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install . && cd / && rm -rf /tmp/s3ferry-src

# A fixed, non-root UID/GID, so orchestrators can check runAsNonRoot and files mounted
# from the host (an AWS config) can be owned by it.
RUN groupadd --gid 10001 s3ferry \
    && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/s3ferry s3ferry
USER 10001:10001
WORKDIR /home/s3ferry

STOPSIGNAL SIGTERM
ENTRYPOINT ["s3ferry"]
CMD ["worker", "--help"]
