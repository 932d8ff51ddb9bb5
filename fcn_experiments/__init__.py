"""The nine-experiment finetuning framework of "FCN in Keras".

Finetunes a Keras application (#1) and its fully convolutional twins (#2-#9:
larger inputs, crop, pad, multi-crop, skip connection) on a folder-per-class
dataset, or on a bundled image-quality dataset built from real photos, and
writes results.csv, results.md and PNG figures to the output folder.

    import fcn_experiments
    rows = fcn_experiments.run_experiments(profile="quick")

From a shell: `python -m fcn_experiments demo` or `... run --help`.
"""

from fcn_experiments.bundled_data import build_bundled_dataset
from fcn_experiments.config import PROFILES
from fcn_experiments.config import Config
from fcn_experiments.config import make_config
from fcn_experiments.experiments import EXPERIMENTS
from fcn_experiments.results import markdown_table
from fcn_experiments.results import read_results
from fcn_experiments.runner import run_experiments

__all__ = [
    "EXPERIMENTS",
    "PROFILES",
    "Config",
    "build_bundled_dataset",
    "make_config",
    "markdown_table",
    "read_results",
    "run_experiments",
]
