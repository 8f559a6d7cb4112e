#!/bin/sh
# Fills .whl/ (git-ignored) with the wheels that the lent GPU machines' image lacks, for
# scripts/gpu_check.py there (docs/gpu.md): that image has Python 3.12 with torch, torchvision,
# transformers, tokenizers, tensorboard, torchmetrics, scikit-learn, matplotlib, scipy, but not
# Avalanche nor what Avalanche imports when it starts (wandb and its telemetry packages,
# pydantic, qpsolvers, pytorchcv, gdown, dill, GPUtil), msgspec, annotated-types, or ccrbench
# itself (installed for its metadata: every run records its version). Versions: those the suite
# is tested with. 26 MB when written; no download on the GPU machine (it has no network).
#
#   sh scripts/gpu_wheels.sh        # here, with PyPI access; then `run` with carry [".whl"]
set -eu
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
mkdir -p .whl
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
    avalanche-lib==0.6.0 wandb==0.31.0 opentelemetry-api==1.45.2 opentelemetry-sdk==1.45.2 \
    opentelemetry-semantic-conventions==0.66b2 opentelemetry-proto==1.45.2 opentelemetry-exporter-otlp-proto-http==1.45.2 \
    opentelemetry-exporter-otlp-proto-common==1.45.2 opentelemetry-exporter-otlp-common==0.66b2 \
    opentelemetry-exporter-http-transport==0.66b2 googleapis-common-protos==1.76.0 protobuf==7.36.2 pydantic==2.14.4 \
    pydantic-core==2.50.5 typing-inspection==0.4.5 annotated-types==0.8.0 platformdirs==4.14.9 qpsolvers==4.13.0 \
    pytorchcv==0.0.74 dill==0.4.1 gdown==6.5.1 beautifulsoup4==4.15.0 soupsieve==4.1.4 msgspec==0.23.0
"$PY" -m pip wheel --quiet --no-deps -w .whl gputil==1.4.0 .  # GPUtil has no wheel on PyPI; `.`: ccrbench
rm -rf build  # setuptools' scratch folder of the ccrbench wheel
du -sh .whl
