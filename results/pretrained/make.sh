#!/bin/sh
# The exact commands that made results/pretrained (run from the repository root; CPU, no download).
set -e
ccrbench run --config shapes_pretrain --out results/pretrained/pretrain --quiet       # the pretrained start (joint, true colours, seed-1 scenes)
ccrbench tune configs/suites/tune_pretrained.yaml --out results/pretrained/tune --skip-existing --jobs 2   # -> selection.json / selection.md
ccrbench suite configs/suites/pretrained.yaml --out results/pretrained --skip-existing --jobs 2
ccrbench report results/pretrained                                                      # -> report.md, report.csv, plots/
