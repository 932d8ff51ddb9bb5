#!/usr/bin/env bash
# keras.applications.fcn.to_fcn on the heavy global-pooling families
# (ConvNeXt, InceptionResNetV2) and on every other member of each family
# (ResNet101/152, EfficientNetB1-B7, EfficientNetV2 B1-L, ConvNeXt Small-XLarge,
# NASNetLarge, ...): each FCN equals Keras' own model at its native size.
set -euo pipefail
cd "$(dirname "$0")/../.."
./run.sh test -m fcn_families -q -p no:cacheprovider
