"""The nine-experiment finetuning framework of "FCN in Keras".

Finetunes a Keras application (#1) and its fully convolutional twins (#2-#9:
larger inputs, crop, pad, multi-crop, skip connection) on a folder-per-class
dataset, or on a bundled image-quality dataset built from real photos, and
writes results.csv, results.md and PNG figures to the output folder.

    import fcn_experiments
    rows = fcn_experiments.run_experiments(profile="quick")

From a shell: `python -m fcn_experiments demo` or `... run --help`.
"""

import importlib

# Public name -> module. Imported on first use, so that `import
# fcn_experiments` (and `--help`) does not load TensorFlow.
_EXPORTS = {
    "EXPERIMENTS": "fcn_experiments.models.experiments",
    "PROFILES": "fcn_experiments.config",
    "Config": "fcn_experiments.config",
    "build_bundled_dataset": "fcn_experiments.data.bundled",
    "make_config": "fcn_experiments.config",
    "details_markdown": "fcn_experiments.reporting.results",
    "make_ava_scores": "fcn_experiments.data.ava_scores",
    "per_class_markdown": "fcn_experiments.evaluation.per_class",
    "markdown_table": "fcn_experiments.reporting.results",
    "read_results": "fcn_experiments.reporting.results",
    "run_experiments": "fcn_experiments.runner",
    "score_test_examples": "fcn_experiments.predict.examples",
    "scores_markdown": "fcn_experiments.predict.reports",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(
            f"module 'fcn_experiments' has no attribute {name!r}"
        )
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__():
    return __all__
