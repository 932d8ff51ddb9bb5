"""What the experiments learn: classes, a score or a score distribution.

One `Task` object per kind (`tasks.base.Task`) owns everything that differs
between them: where the labels come from, the head's activation, the loss,
model selection, the evaluator and its statistics, the result columns, the
figures and what `predict` writes. The rest of the framework asks the task
(`tasks.get(config.task)`, or `config.task_spec`) and compares no names.

The names are listed here, and the task objects imported on first use, so
that the command line's `--help` does not load TensorFlow.
"""

import importlib

from fcn_experiments.errors import UsageError

DEFAULT = "classification"
TASKS = (DEFAULT, "regression", "distribution")
REGRESSION_LOSSES = ("mse", "huber")

_MODULES = {
    "classification": "fcn_experiments.tasks.classification",
    "regression": "fcn_experiments.tasks.scores",
    "distribution": "fcn_experiments.tasks.scores",
}


def get(name=None):
    """The `Task` object named `name` (None: the default, classification).

    Raises:
        UsageError: an unknown name.
    """
    name = DEFAULT if name is None or name == "" else name
    if name not in _MODULES:
        raise UsageError(f"`task` must be one of {TASKS}. Received: task={name!r}")
    return importlib.import_module(_MODULES[name]).BY_NAME[name]
