#!/usr/bin/env bash
# FCN_demo.ipynb in JupyterLab (`./run.sh notebook`), driven by headless
# Chromium through Playwright: tests/test_notebook_browser.py (marker
# `browser`). Installs Debian's chromium if missing (CI runs as root with apt
# reachable); never `playwright install`. The screenshot is the artifact:
# outputs/notebook_browser.png, or $FCN_NOTEBOOK_SCREENSHOT.
set -euo pipefail
cd "$(dirname "$0")/../.."
start=$SECONDS
if [ ! -x /usr/bin/chromium ]; then
    echo "[30-notebook-browser] installing chromium from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends chromium
fi
installed=$SECONDS
export FCN_NOTEBOOK_SCREENSHOT="${FCN_NOTEBOOK_SCREENSHOT:-$PWD/outputs/notebook_browser.png}"
FCN_TEST_WORKERS=0 ./run.sh test tests/test_notebook_browser.py -m browser -p no:cacheprovider
echo "[30-notebook-browser] chromium install $((installed - start)) s," \
    "browser test $((SECONDS - installed)) s; screenshot: $FCN_NOTEBOOK_SCREENSHOT"
