"""What `predict` and `export` take as MODEL: a trained FCN and its facts.

MODEL is one of:

- an experiment folder (`snapshots/exp5_fcn_3x`): a finished experiment's
  `best.keras` (the one best-model file, which the run's figures load
  too); an unfinished one's model is rebuilt from its `config.json`, its
  best epoch's weights loaded (`best.json`);
- a run's output folder, with `experiment=K`;
- a `.keras` file, with the `<file>.json` written beside it by the
  experiments and by `export` (backbone, input size, class names, task).

The task (`tasks.TASKS`) says what the outputs are: class probabilities, a
score (one linear output) or a score distribution (a softmax over K bins).
An experiment folder's comes from its `config.json`, a `.keras` file's from
its `.json` (`"task"`; a file written before tasks existed is
classification). Nothing is inferred from the model: a `.keras` file
without its `.json` is classification unless `--task` says otherwise.
"""

import dataclasses
import json
import os

from fcn_experiments import tasks
from fcn_experiments.config import Config
from fcn_experiments.errors import ModelSourceError  # Raised, and kept here.
from fcn_experiments.models.backbones import BACKBONES
from fcn_experiments.models.backbones import get_backbone
from fcn_experiments.tasks import TASKS
from fcn_experiments.training import records

INFO_SUFFIX = ".json"
BEST_MODEL_FILE = "best.keras"
# The total stride of every Keras backbone here.
STRIDE = 32


@dataclasses.dataclass
class ModelSource:
    """A trained model and what is needed to feed it.

    `model` maps preprocessed `(batch, H, W, 3)` images to its outputs
    (`task`: class scores, one score, or a distribution over the bins named
    by `class_names`); for an FCN `fixed_size` is None and any H, W of at
    least `min_size` work, for experiment #1 (Keras' original model) it is
    the one size it takes.
    """

    model: object
    backbone: str
    input_size: int
    class_names: list
    name: str
    fixed_size: int | None = None
    task: str = tasks.DEFAULT

    @property
    def min_size(self):
        return get_backbone(self.backbone).min_size

    def preprocess(self, images):
        return get_backbone(self.backbone).preprocess_input(images)

    def info(self):
        """The facts a `.keras` file needs beside it (`write_info`)."""
        return {
            "backbone": self.backbone,
            "input_size": self.input_size,
            "class_names": list(self.class_names),
            "fixed_size": self.fixed_size,
            "name": self.name,
            "task": self.task,
        }


def info_path(path):
    return os.path.normpath(path) + INFO_SUFFIX


def write_info(path, source):
    """Writes `<path>.json` with `source.info()`; returns its path."""
    target = info_path(path)
    records.write_json_atomic(target, source.info())
    return target


def save_best_model(model, experiment, config, *, class_names, folder):
    """Saves a finished experiment's best epoch's model as `best.keras`,
    with `best.keras.json` (backbone, input size, class names, task)."""
    size = experiment.input_size(config)
    path = os.path.join(folder, BEST_MODEL_FILE)
    model.save(path)
    source = ModelSource(
        model,
        config.model,
        size,
        list(class_names),
        experiment.folder,
        fixed_size=None if experiment.fcn else size,
        task=config.task,
    )
    write_info(path, source)


def _read_json(path):
    with open(path) as f:
        return json.load(f)


def _experiment_of_folder(folder):
    from fcn_experiments.models.experiments import EXPERIMENTS

    name = os.path.basename(os.path.normpath(folder))
    for experiment in EXPERIMENTS:
        if experiment.folder == name:
            return experiment
    raise ModelSourceError(
        f"{folder} is not an experiment folder (expected a name like "
        f"{EXPERIMENTS[4].folder!r}). Pass an experiment folder, a run's "
        f"output folder with --experiment K, or a .keras file. "
        f"Received: MODEL={folder!r}"
    )


def config_of_folder(folder):
    """The `Config` an experiment folder was trained with."""
    path = os.path.join(folder, "config.json")
    if not os.path.isfile(path):
        raise ModelSourceError(
            f"{folder} has no config.json: it holds no trained experiment. "
            f"Received: MODEL={folder!r}"
        )
    # The file is the run's fingerprint: settings, plus records such as the
    # split, which are not settings.
    settings = {field.name for field in dataclasses.fields(Config)}
    values = {k: v for k, v in _read_json(path).items() if k in settings}
    for key in ("experiments", "data_crops_per_cell", "score_range"):
        if values.get(key) is not None:
            values[key] = tuple(values[key])
    # No `check_config`: the training folders need not exist any more.
    return Config(**values)


def load_experiment(folder, class_names=None, task=None):
    """A `ModelSource` of an experiment folder's best epoch: its
    `best.keras` once finished, else rebuilt from its records."""
    experiment = _experiment_of_folder(folder)
    config = config_of_folder(folder)
    _task(task, config.task, folder)
    best_model = os.path.join(folder, BEST_MODEL_FILE)
    if os.path.isfile(best_model) and os.path.isfile(info_path(best_model)):
        return load_keras_file(best_model, class_names, task=task)
    return _rebuild_experiment(
        folder, experiment, config, class_names=class_names, task=task
    )


def _rebuild_experiment(folder, experiment, config, *, class_names, task):
    from fcn_experiments.models.experiments import build_model
    from fcn_experiments.models.experiments import inner_fcn
    from fcn_experiments.models.starting_weights import build_original

    task = _task(task, config.task, folder)
    best = records.read_best(folder)
    if best is None:
        raise ModelSourceError(
            f"{folder} has no best.json: no epoch of it finished validation "
            "yet. Train it first (python -m fcn_experiments run ...). "
            f"Received: MODEL={folder!r}"
        )
    result_path = os.path.join(folder, records.RESULT_FILE)
    saved_names = None
    if os.path.isfile(result_path):
        saved_names = _read_json(result_path)["classes"].split()
    names = _class_names(class_names, saved_names, folder)
    original = build_original(config, len(names))
    model = build_model(experiment, original, config)
    model.load_weights(os.path.join(folder, best["file"]))
    name = experiment.folder
    size = experiment.input_size(config)
    if not experiment.fcn:
        return ModelSource(model, config.model, size, names, name, size, task)
    # Multi-crop models score whole images at their own size, as FCNs.
    return ModelSource(
        inner_fcn(model), config.model, size, names, name, task=task
    )


def _task(given, saved, where):
    """The task of MODEL: the saved one; `--task` only where none is saved
    (or the same one)."""
    if given is not None and given not in TASKS:
        raise ModelSourceError(
            f"--task must be one of {TASKS}. Received: task={given!r}"
        )
    if given is not None and saved is not None and (
        tasks.get(given) is not tasks.get(saved)
    ):
        raise ModelSourceError(
            f"{where} was trained with task={saved!r}, but --task says "
            f"{given!r}. Leave --task out: it is for a .keras file without "
            f"its .json. Received: task={given!r}"
        )
    return tasks.get(given or saved).name


def _class_names(given, saved, where, *, count=None, task=None):
    if given is not None and saved is not None and len(given) != len(saved):
        raise ModelSourceError(
            f"{where} was trained on {len(saved)} classes {saved}; "
            f"--class-names gives {len(given)}. Received: "
            f"class_names={given}"
        )
    if given is not None:
        return list(given)
    if saved is not None:
        return list(saved)
    if count is None:
        raise ModelSourceError(
            f"{where} has no result.json naming its classes (unfinished "
            "experiment). Pass --class-names."
        )
    return tasks.get(task).default_names(count)


def load_keras_file(path, class_names=None, *, backbone=None, size=None,
                    task=None):
    """A `ModelSource` from a `.keras` file and its `<file>.json`."""
    import keras

    info = {}
    if os.path.isfile(info_path(path)):
        info = _read_json(info_path(path))
    backbone = backbone or info.get("backbone")
    if backbone not in BACKBONES:
        raise ModelSourceError(
            f"{path} has no {os.path.basename(info_path(path))} beside it "
            "saying which backbone's preprocessing it takes. Pass --backbone "
            f"({' | '.join(BACKBONES)}). Received: backbone={backbone!r}"
        )
    input_size = size or info.get("input_size")
    if input_size is None:
        raise ModelSourceError(
            f"{path} has no {os.path.basename(info_path(path))} beside it "
            "giving its input size. Pass --size. Received: size=None"
        )
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:
        raise ModelSourceError(
            f"{path} could not be loaded by keras.saving.load_model "
            f"({type(error).__name__}: {error}). If it holds FCN layers, run "
            "`python FCN_setup.py install` first."
        ) from error
    if isinstance(model, keras.applications.MultiCrop):
        model = model.model  # Score whole images, as an FCN.
    fixed = model.input_shape[1] if model.input_shape[1] is not None else None
    # A .json written before tasks existed has no "task": classification.
    saved_task = info.get("task", tasks.DEFAULT if info else None)
    task = _task(task, saved_task, path)
    tasks.get(task).check_outputs(model.output_shape[-1], path)
    names = _class_names(
        class_names,
        info.get("class_names"),
        path,
        count=model.output_shape[-1],
        task=task,
    )
    name = info.get("name") or os.path.splitext(os.path.basename(path))[0]
    return ModelSource(
        model, backbone, int(input_size), names, name, fixed, task
    )


def resolve_model_source(
    model,
    *,
    experiment=None,
    class_names=None,
    backbone=None,
    size=None,
    task=None,
):
    """The `ModelSource` of MODEL as `predict` and `export` take it.

    Args:
        model: an experiment folder, a run's output folder (with
            `experiment`), or a `.keras` file.
        experiment: the experiment number (1 to 9) inside a run's output
            folder.
        class_names: overrides the saved class names (same count).
        backbone: for a `.keras` file without its `.json`: whose
            `preprocess_input` it takes.
        size: for a `.keras` file without its `.json`: its input size.
        task: for a `.keras` file without its `.json`: what its outputs
            are (`tasks.TASKS`; default classification). Where a task was
            saved, it must be the same.

    Raises:
        ModelSourceError: MODEL cannot be used, with what to do instead.
    """
    if model.endswith(".keras"):
        if not os.path.isfile(model):
            raise ModelSourceError(f"No such file. Received: MODEL={model!r}")
        if experiment is not None:
            raise ModelSourceError(
                "--experiment selects an experiment inside a run's output "
                f"folder, not in a .keras file. Received: MODEL={model!r}, "
                f"experiment={experiment}"
            )
        return load_keras_file(
            model, class_names, backbone=backbone, size=size, task=task
        )
    if not os.path.isdir(model):
        raise ModelSourceError(
            "MODEL must be an experiment folder, a run's output folder (with "
            f"--experiment K) or a .keras file. Received: MODEL={model!r}"
        )
    if experiment is not None:
        from fcn_experiments.models.experiments import EXPERIMENTS

        if experiment not in range(1, len(EXPERIMENTS) + 1):
            raise ModelSourceError(
                f"--experiment must be 1 to {len(EXPERIMENTS)}. "
                f"Received: experiment={experiment}"
            )
        folder = os.path.join(model, EXPERIMENTS[experiment - 1].folder)
        if not os.path.isdir(folder):
            raise ModelSourceError(
                f"{model} has no {EXPERIMENTS[experiment - 1].folder}: "
                f"experiment {experiment} was not run there. "
                f"Received: MODEL={model!r}, experiment={experiment}"
            )
        model = folder
    return load_experiment(model, class_names, task)
