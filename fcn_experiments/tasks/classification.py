"""Classification: classes from class subfolders, a softmax over them.

The labels are the folders (listed as the loader lists them, hidden ones
skipped: `data.listing`), the loss categorical crossentropy, the best epoch
the highest validation accuracy (ties: the lower validation loss). The
test writes each image's class probabilities; the run adds each accuracy's
Wilson interval and McNemar's test against #1 on the same images.
"""

import numpy as np

from fcn_experiments.data.listing import list_class_images
from fcn_experiments.errors import UsageError
from fcn_experiments.evaluation import classification as evaluation
from fcn_experiments.evaluation.per_class import per_class_markdown
from fcn_experiments.tasks.base import Task

# (field, column title in the markdown and printed tables)
COLUMNS = (
    ("experiment", "#"),
    ("name", "experiment"),
    ("model", "model"),
    ("input_size", "input size"),
    ("resize_mode", "resize mode"),
    ("epochs", "epochs"),
    ("best_epoch", "best epoch"),
    ("val_accuracy", "val acc"),
    ("test_accuracy", "test acc"),
    ("test_ci", "95% interval"),
    ("mcnemar_p_vs_1", "p vs #1"),
    ("test_loss", "test loss"),
    ("train_images_per_s", "train img/s"),
    ("wall_time_s", "wall time s"),
    ("weights", "weights"),
)


class Classification(Task):
    name = "classification"
    output_activation = "softmax"
    metrics = ("accuracy",)
    selection = ("val_accuracy", "max")
    plateau_monitor = ("accuracy", "max")
    summary_field = "test_accuracy"
    summary_title = "test accuracy"
    result_columns = COLUMNS
    figures = ("accuracy_chart",)

    def unused_settings(self):
        return ("task", "regression_loss", "score_range", "score_threshold")

    def check_settings(self, config):
        if config.num_classes is not None and config.num_classes < 2:
            raise UsageError(
                "`num_classes` must be at least 2. Received: "
                f"num_classes={config.num_classes}"
            )

    # Labels: the class folders.

    def output_names(self, folder, config):
        return list_class_images(folder)[1]

    def outputs_line(self, names):
        return f"{len(names)} classes: {', '.join(names)}"

    def list_files(self, folder, config):
        return list_class_images(folder)

    def loader(self, folder, config):
        import keras

        return keras.utils.fcn_image_dataset_from_directory, dict(
            directory=folder, label_mode="categorical"
        )

    def dataset_output_names(self, dataset):
        return list(dataset.class_names)

    # Model and training.

    def loss(self, config):
        return "categorical_crossentropy"

    def multicrop_pooling(self, config):
        # The maximum over crops, as the original.
        return "max"

    def probe_labels(self, rng, batch, num_outputs):
        import keras

        return keras.utils.to_categorical(
            np.arange(batch) % num_outputs, num_outputs
        )

    def best_record(self, epoch, logs):
        return {
            **super().best_record(epoch, logs),
            "val_accuracy": float(logs["val_accuracy"]),
        }

    def best_key(self, record):
        return (record["val_accuracy"], -record["val_loss"])

    # Testing and reporting.

    def evaluate(self, model, split, *, batch_size, folder, config, threshold,
                 best):
        # Accuracy and loss come from the written per-image predictions, so
        # that the McNemar tests use exactly the scored outcomes.
        scores = evaluation.score_and_write(model, split, batch_size, folder)
        return dict(
            task=self.name,
            val_accuracy=best["val_accuracy"],
            test_accuracy=float(scores["accuracy"]),
            test_loss=float(scores["loss"]),
            # Less any test file that failed to decode.
            test_images=scores["images"],
            per_class_test=scores["per_class"],
        )

    def add_statistics(self, rows, output_dir, experiment_folder):
        return evaluation.add_statistics(rows, output_dir, experiment_folder)

    def read_predictions(self, path):
        return evaluation.read_predictions(path)

    def headline(self, result):
        return f"test accuracy {result['test_accuracy']:.4f}"

    def details_markdown(self, rows):
        return per_class_markdown(rows)

    # predict: class probabilities.

    def default_names(self, count):
        return [f"class_{i}" for i in range(count)]

    def set_outputs(self, row, mean):
        row.probabilities = mean

    def heatmap_of(self, score_map, outputs, class_names):
        """The map of the predicted class, titled with its name and
        probability."""
        predicted = int(np.argmax(outputs))
        return (
            score_map,
            predicted,
            f"{class_names[predicted]} {outputs[predicted]:.2f}",
        )

    def csv_columns(self, class_names):
        return ["predicted_class"] + [f"p_{name}" for name in class_names]

    def csv_cells(self, row, class_names):
        return [class_names[int(np.argmax(row.probabilities))]] + [
            f"{p:.6f}" for p in row.probabilities
        ]

    def markdown_columns(self, class_names):
        return ["predicted"] + [f"p({name})" for name in class_names]

    def markdown_cells(self, row, class_names):
        return [class_names[int(np.argmax(row.probabilities))]] + [
            f"{p:.3f}" for p in row.probabilities
        ]


CLASSIFICATION = Classification()
BY_NAME = {CLASSIFICATION.name: CLASSIFICATION}
