#!/usr/bin/env bash
# keras.applications.fcn.to_fcn on the heavy global-pooling families
# (ConvNeXt, InceptionResNetV2), the round trips and skip branches, and the
# other members of each family up to EfficientNetB4/V2S, ConvNeXtBase and
# ResNet152: each FCN equals Keras' own model at its native size. Two
# workers, test by test: building and converting a model runs on one core;
# the two together peaked at 8.7 GB. The largest members (EfficientNetB5-B7,
# EfficientNetV2M/L, ConvNeXtLarge/XLarge, NASNetLarge), gigabytes each, run
# by hand: `./run.sh test -m fcn_families` on a machine with more memory.
set -euo pipefail
cd "$(dirname "$0")/../.."
FCN_TEST_WORKERS=0 ./run.sh test -m fcn_families -q -p no:cacheprovider -n 2 --dist load \
    -k "not (EfficientNetB5 or EfficientNetB6 or EfficientNetB7 or EfficientNetV2M or EfficientNetV2L or ConvNeXtLarge or ConvNeXtXLarge or NASNetLarge)"
