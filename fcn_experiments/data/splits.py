"""The run's split into train, validation and test: made once, checked,
recorded.

Without a validation folder, the training folder's files are split into
train and validation by `keras.utils.fcn_image_split.stratified_split`
(stratified by class, seeded by `config.seed`), the function that
`fcn_image_dataset_from_directory(validation_split=..., subset=...)` also
splits with: the plan made here and what every experiment loads are the same
split. `validation_files.csv` in the output folder lists the validation
files, and `fingerprint` puts the split (a hash of the file lists and the
per-class counts) into the settings fingerprint, so that a changed split (new
files, another seed or fraction) is refused on resume like any changed
setting.
"""

import csv
import dataclasses
import hashlib
import os
import warnings

from keras.utils.fcn_image_split import stratified_split

from fcn_experiments.errors import UsageError

SPLITS = ("train", "validation", "test")
VALIDATION_FILES = "validation_files.csv"


@dataclasses.dataclass
class RunSplit:
    """The files of each split, as `{split: [(path, class name)]}`, and
    `validation_from_train`: whether validation was split off train."""

    class_names: list
    files: dict
    validation_from_train: bool

    def counts(self):
        """`{split: {class: number of files}}`."""
        return {
            split: class_counts([c for _, c in self.files[split]], self.class_names)
            for split in SPLITS
        }



class SplitError(UsageError):
    """The run's train / validation / test split cannot be used as it is."""

def class_counts(classes, class_names):
    """`{class: count}` of a list of class names, in `class_names` order."""
    return {name: sum(1 for c in classes if c == name) for name in class_names}


def plan_split(folders, config):
    """The `RunSplit` of a run, checked (see `check_split`).

    Args:
        folders: `pipelines.DataFolders`.
        config: the run's `Config` (`validation_split`, `seed`,
            `min_class_images`; its task lists each folder's files, by
            class, or in one group for a score task).
    """
    task = config.task_spec
    train, class_names = task.list_files(folders.train, config)
    files = {}
    for split, directory in (("validation", folders.validation), ("test", folders.test)):
        if directory is None:
            continue
        files[split], names = task.list_files(directory, config)
        check_same_classes(split, directory, names, train_dir=folders.train,
                           train_names=class_names)
    if folders.validation is None:
        training, validation = stratified_split(
            [class_names.index(c) for _, c in train], config.validation_split,
            config.seed,
        )
        files["train"] = [train[i] for i in training]
        files["validation"] = [train[i] for i in validation]
    else:
        files["train"] = train
    split = RunSplit(class_names, files, folders.validation is None)
    check_split(split.counts(), config.min_class_images)
    return split


def check_same_classes(split, directory, names, *, train_dir, train_names):
    if names != train_names:
        missing = sorted(set(train_names) - set(names))
        extra = sorted(set(names) - set(train_names))
        raise SplitError(
            f"The {split} folder {directory} has classes {names}, the training "
            f"folder {train_dir} has {train_names} (missing: {missing}, extra: "
            f"{extra}); give every split the same class subfolders."
        )


def check_split(counts, min_class_images):
    """Refuses a class with no image in a split; warns when a split leaves
    fewer than `min_class_images` of a class.

    Args:
        counts: `{split: {class: count}}`.
        min_class_images: the smallest count that passes silently.
    """
    for split, per_class in counts.items():
        empty = [name for name, n in per_class.items() if n == 0]
        if empty:
            raise SplitError(
                f"The {split} split has no images of class(es) {empty} "
                f"(counts: {per_class}); every class needs images in train, "
                "validation and test. Add images, or raise validation_split."
            )
    for split, per_class in counts.items():
        few = {name: n for name, n in per_class.items() if n < min_class_images}
        if few:
            warnings.warn(
                f"The {split} split has fewer than min_class_images="
                f"{min_class_images} images of class(es) {few}; accuracies "
                "measured on so few are coarse. Add images or raise "
                "validation_split.",
                stacklevel=2,
            )


def summary(split):
    """One line: the images per split and class."""
    counts = split.counts()
    parts = [
        f"{name} {sum(counts[name].values())}"
        + (
            ""
            if len(split.class_names) == 1
            else " (" + ", ".join(f"{c} {n}" for c, n in counts[name].items()) + ")"
        )
        for name in SPLITS
    ]
    where = (
        f"; validation split off train ({VALIDATION_FILES})"
        if split.validation_from_train
        else ""
    )
    return "Images: " + ", ".join(parts) + where


def fingerprint(split):
    """What the results depend on in the split, for the settings fingerprint."""
    digest = hashlib.sha256()
    for name in SPLITS:
        for path, class_name in split.files[name]:
            digest.update(f"{name}\t{class_name}\t{os.path.abspath(path)}\n".encode())
    return {"files_sha256": digest.hexdigest()[:16], "counts": split.counts()}


def record(split, output_dir, train_dir):
    """Writes `validation_files.csv` (path relative to `train_dir`, class)
    when validation was split off train; returns its path or None."""
    if not split.validation_from_train:
        return None
    path = os.path.join(output_dir, VALIDATION_FILES)
    tmp = f"{path}.tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "class"])
        for file, class_name in split.files["validation"]:
            writer.writerow([os.path.relpath(file, train_dir), class_name])
    os.replace(tmp, path)
    return path


def read_recorded(output_dir):
    """The `(path relative to train_dir, class)` rows of
    `validation_files.csv`."""
    with open(os.path.join(output_dir, VALIDATION_FILES), newline="") as f:
        return [(row["path"], row["class"]) for row in csv.DictReader(f)]


def check_loaded(split, loaded, min_class_images):
    """Checks the files an experiment loaded against the run's split.

    Args:
        split: the `RunSplit`.
        loaded: `{split name: file paths the loader kept}`.
        min_class_images: as `check_split`.

    Returns:
        `{split: {class: count}}` of the loaded files: the planned counts
        less bad files (skipped by the loader with a warning each), checked
        again when they differ.

    Raises:
        SplitError: a loaded file that the split puts elsewhere.
    """
    counts = {}
    for name in SPLITS:
        planned = dict(split.files[name])
        strays = sorted(set(loaded[name]) - set(planned))
        if strays:
            raise SplitError(
                f"The loader's {name} split holds {len(strays)} file(s) that "
                f"the run's split puts elsewhere, e.g. {strays[0]}; did the "
                "folder change during the run? Run again to make a new split."
            )
        counts[name] = class_counts(
            [planned[p] for p in loaded[name]], split.class_names
        )
    if counts != split.counts():
        check_split(counts, min_class_images)
    return counts
