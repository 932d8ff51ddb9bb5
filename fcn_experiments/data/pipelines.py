"""Train, validation and test pipelines of one experiment."""

import dataclasses
import os
import warnings

import tensorflow as tf

from fcn_experiments.data.bundled import build_bundled_dataset
from fcn_experiments.errors import UsageError
from fcn_experiments.models.experiments import preprocess_function


@dataclasses.dataclass
class DataFolders:
    """Where the three splits come from.

    `validation` is None when it is split off `train`
    (`config.validation_split`).
    """

    train: str
    validation: str | None
    test: str
    name: str


def resolve_folders(config):
    """The data folders of a run; builds the bundled dataset if needed."""
    if not config.uses_bundled_data:
        name = os.path.basename(os.path.normpath(config.train_dir))
        return DataFolders(
            config.train_dir, config.validation_dir, config.test_dir, name
        )
    root = config.data_dir or os.path.join(config.output_dir, "data")
    folder = build_bundled_dataset(
        root,
        cell_size=config.data_cell_size,
        crops_per_cell=config.data_crops_per_cell,
        seed=config.seed,
        **config.task_spec.bundled_data_settings(),
    )
    return DataFolders(
        os.path.join(folder, "train"),
        os.path.join(folder, "validation"),
        os.path.join(folder, "test"),
        "bundled image quality",
    )


@dataclasses.dataclass
class Split:
    """One split: `file_paths` lists its files in the loader's order;
    `undecodable_paths` (the loader's list, filled as the dataset is
    iterated) those of them that failed to decode, whose images are
    missing from `dataset`."""

    dataset: tf.data.Dataset
    class_names: list
    num_images: int
    file_paths: list
    undecodable_paths: list = dataclasses.field(default_factory=list)


def _load(directory, config, *, size, mode, batch_size, training, subset=None):
    split = (
        {}
        if subset is None
        else {
            "validation_split": config.validation_split,
            "subset": subset,
        }
    )
    # The test split (unbatched) is read once: nothing to cache.
    cache = config.cache_images and batch_size is not None

    task = config.task_spec
    make, labels = task.loader(directory, config)

    def loader(cache):
        return make(
            **labels,
            batch_size=batch_size,
            image_size=size,
            resize_mode=mode,
            shuffle=training,
            seed=config.seed,
            horizontal_flip=training,
            on_bad_image="skip",
            cache_images=cache,
            verbose=False,
            **split,
        )

    dataset = loader(cache)
    if cache and not _cache_fits(len(dataset.file_paths), size, mode):
        warnings.warn(
            f"cache_images=True, but {len(dataset.file_paths)} images of "
            f"{directory} at {size} px ({mode}) would need more "
            f"than {CACHE_LIMIT_BYTES / 2**30:.0f} GiB of memory: they are "
            "decoded every epoch instead. Pass cache_images=False to silence "
            "this.",
            stacklevel=2,
        )
        dataset = loader(False)  # The file scan is remembered: no re-read.
    # The model's outputs: the classes, the score, or the distribution's bins.
    class_names = task.dataset_output_names(dataset)
    num_images = len(dataset.file_paths)
    file_paths = list(dataset.file_paths)
    undecodable_paths = dataset.undecodable_paths
    preprocess = preprocess_function(config)
    dataset = dataset.map(
        lambda x, y: (preprocess(x), task.label_to_output(y)),
        num_parallel_calls=tf.data.AUTOTUNE,
    ).prefetch(tf.data.AUTOTUNE)
    return Split(dataset, class_names, num_images, file_paths,
                 undecodable_paths)


# The most `cache_images` keeps in memory per split (float32 pixels).
CACHE_LIMIT_BYTES = 4 * 2**30


def _cache_fits(num_images, size, mode):
    height, width = (size, size) if isinstance(size, int) else size
    crops = 3 if mode == "multicrop" else 1
    # A native image's longer side is up to twice its shorter side here.
    longer = 2 if mode == "native" else 1
    return num_images * height * width * 3 * 4 * crops * longer <= (
        CACHE_LIMIT_BYTES
    )


def load_splits(folders, config, *, size, mode, batch_size):
    """The three `Split`s of an experiment, checked against each other.

    Args:
        folders: `DataFolders`.
        config: the run's `Config`.
        size: input side in pixels.
        mode: loader resize mode (`stretch`, `crop`, `pad`, `multicrop`,
            `native`).
        batch_size: global batch size.

    Returns:
        `(train, validation, test)`. Only train is shuffled and flipped.
        Without a validation folder, both train and validation come from
        `fcn_image_dataset_from_directory`'s seeded, stratified split of
        the training folder (`splits.plan_split` plans the same one).
        Test is unbatched, in the order of its `file_paths`: its predictions
        are written per image (`Task.evaluate`).
    """
    shape = dict(size=size, mode=mode)
    if folders.validation is None:
        train = _load(folders.train, config, **shape, batch_size=batch_size,
                      training=True, subset="training")
        validation = _load(folders.train, config, **shape,
                           batch_size=batch_size, training=False,
                           subset="validation")
    else:
        train = _load(folders.train, config, **shape, batch_size=batch_size,
                      training=True)
        validation = _load(folders.validation, config, **shape,
                           batch_size=batch_size, training=False)
    test = _load(folders.test, config, **shape, batch_size=None, training=False)
    for name, split in (("validation", validation), ("test", test)):
        if split.class_names != train.class_names:
            raise UsageError(
                f"The {name} classes {split.class_names} differ from the "
                f"training classes {train.class_names}; every split needs the "
                "same class subfolders (score tasks: the same table columns)."
            )
    for name, split in (
        ("train", train),
        ("validation", validation),
        ("test", test),
    ):
        if split.num_images == 0:
            raise UsageError(
                f"The {name} split has no readable images; check its folder "
                "(one subfolder per class, with .jpg/.png/... files)."
            )
    return train, validation, test
