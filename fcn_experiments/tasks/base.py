"""`Task`: what one kind of experiment learns, and everything that follows.

The framework holds one object per task (`tasks.get(name)`):

- `classification` (`tasks.classification`): folder-per-class data, a
  softmax over the classes, categorical crossentropy; the best epoch has
  the highest validation accuracy.
- `regression` and `distribution` (`tasks.scores`): each split folder
  holds a table (`scores.csv`: `filename,score`; `distributions.csv`:
  `filename,p1,...,pK`), read and checked once (`tasks.tables`); one linear
  output with MSE or Huber, or a softmax over K bins with the earth
  mover's distance; the best epoch has the lowest validation loss.

A `Task` answers for: the labels (output names, the files of a split, the
loader's arguments), the head (activation, pooling of crops), training
(loss, metrics, model selection, the plateau monitor), testing (the
evaluator, the run's statistics, the threshold), reporting (result
columns, headline, figures) and `predict` (outputs, heatmaps, CSV and
markdown cells).
"""

import numpy as np


class Task:
    """The part of a run that depends on what it learns (see the module).

    Subclasses set the class attributes and implement the methods that
    raise `NotImplementedError`.
    """

    name = None
    # The head's activation, and whether `predict` renormalises its outputs
    # to sum to 1 (softmax heads; a max-pooled map's maxima sum to >= 1).
    output_activation = "softmax"
    normalizes_outputs = True
    # Keras metrics compiled in, beside the loss.
    metrics = ()
    # `(log key, "max" | "min")`: the best epoch on validation, and what
    # ReduceLROnPlateau watches in training (as the original did).
    selection = ("val_loss", "min")
    plateau_monitor = ("loss", "min")
    # The test figure a row is summed up by (results, figures, headline).
    summary_field = None
    summary_title = None
    # results.md and the printed table: `(field, title)`.
    result_columns = ()
    # The run's figures besides the training curves (`reporting.plots`).
    figures = ()

    def __repr__(self):
        return f"<task {self.name}>"

    # Settings.

    def profile_settings(self, profile):
        """Settings this task changes in the named profile: they override
        the profile's, and are overridden by the caller's."""
        return {}

    def fill_defaults(self, values):
        """Adds task defaults to `make_config`'s values (in place)."""

    def check_settings(self, config):
        """Raises `UsageError` for a setting this task cannot take."""

    def unused_settings(self):
        """`Config` fields this task does not use: left out of the
        settings fingerprint, as before they existed."""
        return ()

    def bundled_data_settings(self):
        """Arguments of `build_bundled_dataset` for this task."""
        return {}

    def recipe(self, config):
        """The task's part of the one-line training recipe ("" for none)."""
        return ""

    # Labels.

    def check_labels(self, folders, config):
        """Reads and checks every split's labels once, before anything
        else reads them; raises `UsageError` naming the first problem."""

    def output_names(self, folder, config):
        """The names of the model's outputs, from the training folder."""
        raise NotImplementedError

    def outputs_line(self, names):
        """The outputs in a few words, for the run's first line."""
        raise NotImplementedError

    def list_files(self, folder, config):
        """`([(path, group)], groups)`: a split folder's files as the
        loader lists them, and the groups a split is stratified by."""
        raise NotImplementedError

    def loader(self, folder, config):
        """`(make, arguments)`: the Keras loader of a split folder
        (`keras.utils.fcn_image_dataset_from_*`) and its label arguments."""
        raise NotImplementedError

    def dataset_output_names(self, dataset):
        """The output names a loaded dataset says it has."""
        raise NotImplementedError

    def label_to_output(self, labels):
        """The loader's label tensor as the model's output takes it."""
        return labels

    def threshold(self, config, folders):
        """The binary accuracy's boundary (score tasks), or None."""
        return None

    # Model and training.

    def loss(self, config):
        """The Keras loss the model trains with."""
        raise NotImplementedError

    def multicrop_pooling(self, config):
        """How `MultiCrop` pools its crops: as the FCN pools positions."""
        return config.fcn_pooling

    def probe_labels(self, rng, batch, num_outputs):
        """Random labels for the precision probe's training steps."""
        raise NotImplementedError

    def best_record(self, epoch, logs):
        """What the best-epoch checkpoint keeps of an epoch's logs."""
        return {"epoch": epoch, "val_loss": float(logs["val_loss"])}

    def best_key(self, record):
        """Orders best-epoch records: the larger the better."""
        return (-record["val_loss"],)

    # Testing and reporting.

    def evaluate(self, model, split, *, batch_size, folder, config, threshold,
                 best):
        """Scores the test split once, writes `test_predictions.csv` and
        returns the result fields of the test (and of `best`, the epoch
        selected on validation)."""
        raise NotImplementedError

    def add_statistics(self, rows, output_dir, experiment_folder):
        """Adds the run-level statistics (intervals, tests against #1) to
        the result rows, in place."""
        raise NotImplementedError

    def headline(self, result):
        """The one-line test result of an experiment."""
        raise NotImplementedError

    def details_markdown(self, rows):
        """What goes under the results table in results.md."""
        raise NotImplementedError

    def read_predictions(self, path):
        """`{path: outcome}` of a `test_predictions.csv`."""
        raise NotImplementedError

    # predict.

    def check_outputs(self, count, where):
        """Raises `ModelSourceError` when `count` outputs do not fit."""

    def default_names(self, count):
        """Output names where none were saved."""
        raise NotImplementedError

    def set_outputs(self, row, mean):
        """Fills an `ImageScore` from its outputs averaged over scales."""
        raise NotImplementedError

    def heatmap_of(self, score_map, outputs, class_names):
        """`(score_map, index, title)` of what to draw over one image."""
        raise NotImplementedError

    def csv_columns(self, class_names):
        """The columns of the scores CSV between height and scales."""
        raise NotImplementedError

    def csv_cells(self, row, class_names):
        """Those columns' cells of one scored `ImageScore`."""
        raise NotImplementedError

    def markdown_columns(self, class_names):
        """The markdown table's columns after image and size."""
        raise NotImplementedError

    def markdown_cells(self, row, class_names):
        """Those columns' cells of one scored `ImageScore`."""
        raise NotImplementedError


def normalised(values):
    """Rows divided by their sums (float32 softmax rows miss 1 slightly)."""
    values = np.asarray(values, dtype="float64")
    return values / values.sum(axis=1, keepdims=True)
