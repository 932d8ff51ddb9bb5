#!/usr/bin/env bash
# Keras' own image-loader tests (shipped in the Keras wheel), run on the Keras
# tree the FCN extensions are installed in: the extensions must leave Keras'
# `image_dataset_from_directory` and `image_utils` as they are. The tests of
# the `grain` format are deselected: they need the optional `grain` package.
set -euo pipefail
cd "$(dirname "$0")/../.."
python="$PWD/.venv/bin/python"
keras_dir=$("$python" -c "import keras, os; print(os.path.dirname(keras.__file__))")
# Outside the repository, so that its pytest.ini does not apply.
cd "$(mktemp -d)"
"$python" -m pytest -q -p no:cacheprovider -k "not grain" \
    "$keras_dir/src/utils/image_dataset_utils_test.py" \
    "$keras_dir/src/utils/image_utils_test.py"
