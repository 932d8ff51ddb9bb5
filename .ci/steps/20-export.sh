#!/usr/bin/env bash
# Export to .keras, SavedModel and ONNX, each checked against Keras
# (tests/test_export.py, and the score models' exports in
# tests/test_predict_scores.py, and the FCNs of ResNet50 and EfficientNetV2B0 in
# tests/test_experiments_global_pooling.py; ONNX conversion is slow on a 2-core CPU).
set -euo pipefail
# Two pytest workers, a file each: the conversions run on one core.
FCN_TEST_WORKERS=0 ./run.sh test tests/test_export.py tests/test_predict_scores.py tests/test_experiments_global_pooling.py -m export -q \
    -n 2 --dist loadfile
