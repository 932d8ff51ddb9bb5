"""Train, validation and test pipelines of one experiment."""

import dataclasses
import os
import warnings

import numpy as np
import tensorflow as tf

import keras

from fcn_experiments.bundled_data import build_bundled_dataset
from fcn_experiments.experiments import preprocess_function


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


def _load(directory, config, size, mode, batch_size, training, subset=None):
    split = (
        {}
        if subset is None
        else {
            "validation_split": config.validation_split,
            "subset": subset,
        }
    )
    # Cached: the loader decodes each image once, unshuffled and unflipped;
    # `_from_cache` shuffles, flips and batches it every epoch.
    cache = config.cache_images and batch_size is not None

    def loader(cache):
        return keras.utils.fcn_image_dataset_from_directory(
            directory,
            label_mode="categorical",
            batch_size=None if cache else batch_size,
            image_size=size,
            resize_mode=mode,
            shuffle=training and not cache,
            seed=config.seed,
            horizontal_flip=training and not cache,
            on_bad_image="skip",
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
        cache = False
        dataset = loader(cache)  # The file scan is remembered: no re-read.
    class_names = list(dataset.class_names)
    num_images = len(dataset.file_paths)
    file_paths = list(dataset.file_paths)
    undecodable_paths = dataset.undecodable_paths
    if cache:
        dataset = _from_cache(
            dataset, num_images, mode, batch_size, training, config.seed
        )
    preprocess = preprocess_function(config)
    dataset = dataset.map(
        lambda x, y: (preprocess(x), y), num_parallel_calls=tf.data.AUTOTUNE
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


def _from_cache(dataset, num_images, mode, batch_size, training, seed):
    """Batches of an unbatched `(image, label)` dataset kept in memory after
    its first pass; for training reshuffled and randomly flipped each epoch,
    reproducibly from `seed`. `"native"` batches group images by shape."""
    dataset = dataset.cache()
    shapes = [
        tuple(shape)
        for shape in dataset.map(lambda x, y: tf.shape(x)).as_numpy_iterator()
    ]  # This first pass fills the cache.
    if training:
        dataset = dataset.shuffle(
            num_images, seed=seed, reshuffle_each_iteration=True
        )
        flips = tf.data.Dataset.random(
            seed=seed, rerandomize_each_iteration=True
        ).map(lambda r: r % 2 == 1)
        # A multi-crop image is (crops, height, width, channels); flipping
        # the photo mirrors each crop and reverses their order.
        axes = [0, 2] if mode == "multicrop" else [1]
        dataset = tf.data.Dataset.zip((dataset, flips)).map(
            lambda xy, flip: (
                tf.cond(flip, lambda: tf.reverse(xy[0], axes), lambda: xy[0]),
                xy[1],
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    if mode == "native":
        dataset = dataset.group_by_window(
            key_func=lambda x, y: tf.cast(
                tf.shape(x)[0] * 65536 + tf.shape(x)[1], "int64"
            ),
            reduce_func=lambda key, window: window.batch(batch_size),
            window_size=batch_size,
        )
        counts = np.unique(shapes, axis=0, return_counts=True)[1]
        batches = int(np.sum(-(-counts // batch_size)))
    else:
        dataset = dataset.batch(batch_size)
        batches = -(-num_images // batch_size)
    # Keras shows the epoch's length from this, and expects every epoch to
    # have it.
    return dataset.apply(tf.data.experimental.assert_cardinality(batches))


def load_splits(folders, config, size, mode, batch_size):
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
        are written per image (`test_predictions.score_and_write`).
    """
    if folders.validation is None:
        train = _load(
            folders.train, config, size, mode, batch_size, True, "training"
        )
        validation = _load(
            folders.train, config, size, mode, batch_size, False, "validation"
        )
    else:
        train = _load(folders.train, config, size, mode, batch_size, True)
        validation = _load(
            folders.validation, config, size, mode, batch_size, False
        )
    test = _load(folders.test, config, size, mode, None, False)
    for name, split in (("validation", validation), ("test", test)):
        if split.class_names != train.class_names:
            raise ValueError(
                f"The {name} classes {split.class_names} differ from the "
                f"training classes {train.class_names}; every split needs the "
                "same class subfolders."
            )
    for name, split in (
        ("train", train),
        ("validation", validation),
        ("test", test),
    ):
        if split.num_images == 0:
            raise ValueError(
                f"The {name} split has no readable images; check its folder "
                "(one subfolder per class, with .jpg/.png/... files)."
            )
    return train, validation, test
