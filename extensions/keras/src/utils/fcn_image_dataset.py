"""tf.data pipelines that feed FCNs images at their aspect ratio.

`fcn_image_dataset_from_directory` is `keras.utils.image_dataset_from_directory`
(same class discovery, label modes, order and shuffling: the folder is
listed by `fcn_image_index`, which gives what Keras' `index_directory` does,
faster) with a safe `validation_split` and a `resize_mode`.

`validation_split` / `subset`: Keras takes the last fraction of the file list
after a shuffle that only a shuffling call performs, so a training call with
`shuffle=True` and a validation call with `shuffle=False` split different
orders (files in both subsets, a validation set of one class). Here the split
is made on the sorted file list, stratified by class and seeded by `seed`
(`fcn_image_split.stratified_split`), before any shuffle: every call with the
same `seed`, `validation_split` and files gets the same two disjoint subsets,
whatever its `shuffle`, and every class with 2 or more files is in both.
`seed` is therefore required with `validation_split`. A subset is then in
file order, or in a seeded shuffled order with `shuffle=True`.

Resize modes:

- `"stretch"`: resized to S x S, aspect ratio lost (Keras' default);
- `"crop"`: shorter side to S, central S x S: Keras' `crop_to_aspect_ratio`
  (its `smart_resize`, reused; same pixels);
- `"pad"`: longer side to S, centred on black S x S: Keras'
  `pad_to_aspect_ratio` (TF's `resize_with_pad`; same pixels), but in exact
  integer arithmetic: TF's float32 can make the longer side S - 1, leaving a
  black strip (a 32 x 32 image padded to 224 comes out 223 x 223);
- `"multicrop"`: resized so that the shorter side is S, then three S x S
  crops (start, centre, end along the longer side), which cover images up to
  3:1; shape `(3, S, S, C)` per image. `keras.applications.MultiCrop` runs
  a model on them and pools the predictions;
- `"native"`: shorter side S, longer side rounded to a multiple of `stride`
  (so the aspect ratio changes by at most `stride / 2` pixels), batched by
  shape: a batch holds images of one aspect-ratio bucket.

`cache_images=True` decodes every image once, during the first epoch, in
file order, and keeps it in memory; each epoch then shuffles and flips the
kept images (from `seed`) and batches them as without the cache. The
number of batches comes from the file list (for `"native"`, from each
file's size, read from its header), so the data is not read at build time.

Bad files are caught when the file list is built, before the dataset
exists (`fcn_image_scan`): every file is checked once per process (its
verdict is remembered while the file is unchanged), a JPEG or PNG from its
structure without decoding it, any other file with PIL (see
`fcn_image_files` for what counts as bad). A bad file is skipped with one
warning naming it, or raises with `on_bad_image="raise"`. With a split,
only the subset's files are read (after the split, so a bad file never
moves another file across subsets). What a structural check cannot see,
damage inside a JPEG's compressed data, is caught during the epoch
(`fcn_decode_recovery`): such a file is left out of its batch with one
warning naming it, and the others are delivered. A batch none of whose
files decodes is replaced by another batch of the data (from a fresh pass
over it), so that every epoch has the length the dataset states and no
empty batch reaches the model. The dataset records the files that failed
in `undecodable_paths`.

The files are decoded and resized by `fcn_image_loader`, in the pipeline
that `fcn_image_pipeline` assembles.

Intentional differences from Keras' loader, all for correctness: bad files
are skipped instead of stopping training mid-epoch; EXIF orientation is
applied; the `validation_split` above; files that TF decodes wrongly
(palette BMP) or refuses (1-bit BMP, GIF or BMP in grayscale, JPEG in RGBA)
and CMYK JPEGs go through PIL; the
pad placement is exact; a list of `labels` is not shuffled in place; images
are always float32 in [0, 255] (Keras gives uint8 for `"nearest"`). Only
channels-last tf.data datasets are made.
"""

import collections
import contextlib
import gc
import warnings

import numpy as np

from keras.src.utils import dataset_utils
from keras.src.utils import fcn_image_index
from keras.src.utils import fcn_image_scan
from keras.src.utils import fcn_image_split
from keras.src.utils import image_dataset_utils
from keras.src.utils import io_utils

# Re-exported: the framework's predictions read it from here.
from keras.src.utils.fcn_image_info import upright_size as upright_size
from keras.src.utils.fcn_image_loader import NUM_CHANNELS
from keras.src.utils.fcn_image_loader import ImageLoader
from keras.src.utils.fcn_image_pipeline import paths_to_dataset

RESIZE_MODES = ("stretch", "crop", "pad", "multicrop", "native")
ON_BAD_IMAGE = ("skip", "raise")
ALLOWLIST_FORMATS = image_dataset_utils.ALLOWLIST_FORMATS
INTERPOLATIONS = ("bilinear", "nearest", "bicubic", "area", "lanczos3",
                  "lanczos5", "gaussian", "mitchellcubic")


def fcn_image_dataset_from_directory(
    directory,
    labels="inferred",
    label_mode="int",
    class_names=None,
    color_mode="rgb",
    batch_size=32,
    image_size=224,
    resize_mode="crop",
    shuffle=True,
    seed=None,
    validation_split=None,
    subset=None,
    interpolation="bilinear",
    follow_links=False,
    horizontal_flip=False,
    stride=32,
    on_bad_image="skip",
    cache_images=False,
    verbose=True,
):
    """Generates a `tf.data.Dataset` of images at their aspect ratio.

    Arguments not listed are those of `keras.utils.image_dataset_from_directory`
    and mean the same.

    Args:
        validation_split: Fraction of each class held out as the
            "validation" subset; needs `seed` (see the module docstring: the
            split does not depend on `shuffle`, unlike Keras').
        image_size: The target side S (an int), or `(height, width)` for
            `"stretch"`, `"crop"`, `"pad"` and `"multicrop"`.
        resize_mode: One of `"stretch"`, `"crop"`, `"pad"`, `"multicrop"`,
            `"native"` (see the module docstring).
        horizontal_flip: Whether to flip each image left-right with
            probability 1/2, anew every epoch (the three crops of a multicrop
            image share one flip). With `validation_split`, only the training
            subset is flipped.
        stride: For `"native"`: the longer side is rounded to a multiple of
            it (the network's total stride, 32 for the Keras backbones).
        on_bad_image: `"skip"` (one warning per bad file) or `"raise"`.
        cache_images: Whether to decode each image once, during the first
            epoch, in file order, and keep it in memory (float32, so only
            for data that fits: 4 x height x width x channels bytes an
            image, 3 times that for `"multicrop"`). Each epoch then
            reshuffles all of them (with `shuffle`) and flips them (with
            `horizontal_flip`) anew, reproducibly from `seed`.

    Returns:
        A `tf.data.Dataset` (two for `subset="both"`) yielding `(images,
        labels)`, or only images when `label_mode` is None. Images are
        float32 in [0, 255] of shape `(batch, S, S, C)`, `(batch, 3, S, S, C)`
        for `"multicrop"` and `(batch, h, w, C)` for `"native"`. Like Keras',
        the dataset has `class_names` and `file_paths` (the files kept).
        It also has `undecodable_paths`: a list, filled as the dataset is
        iterated, of the files of `file_paths` that failed to decode (each
        once, in the order found); their images are missing from the
        data.
    """
    if labels not in ("inferred", None):
        if not isinstance(labels, (list, tuple)):
            raise ValueError(
                "`labels` must be 'inferred', None, or a list/tuple of "
                "integer labels, one per image file in the directory "
                f"(in alphanumeric order of the paths). Received: labels={labels}"
            )
        if class_names:
            raise ValueError(
                "`class_names` can only be passed with `labels='inferred'`. "
                f"Received: labels={labels}, class_names={class_names}"
            )
    if label_mode not in {"int", "categorical", "binary", None}:
        raise ValueError(
            "`label_mode` must be one of 'int', 'categorical', 'binary' or "
            f"None. Received: label_mode={label_mode}"
        )
    if labels is None or label_mode is None:
        labels = None
        label_mode = None
    options = check_arguments(
        color_mode=color_mode,
        image_size=image_size,
        resize_mode=resize_mode,
        interpolation=interpolation,
        stride=stride,
        on_bad_image=on_bad_image,
        cache_images=cache_images,
        batch_size=batch_size,
        validation_split=validation_split,
        subset=subset,
        shuffle=shuffle,
        seed=seed,
        horizontal_flip=horizontal_flip,
        verbose=verbose,
    )

    if seed is None:
        seed = np.random.randint(1e6)
        options = options._replace(seed=seed)
    # Cached images are reshuffled whole each epoch: they are kept in file
    # order, which the seeded shuffle of the list would only permute.
    shuffle_files = shuffle and not cache_images
    # A build allocates a few tuples per file; with TF loaded, the cyclic
    # GC walked its ~300k objects again and again meanwhile (0.4 s per
    # 100k files), and in the forked scan workers it copied every page.
    with gc_paused():
        image_paths, labels, class_names, unlisted = fcn_image_index.index_directory(
            directory,
            # A copy: Keras shuffles a list of labels in place.
            labels if labels in ("inferred", None) else list(labels),
            formats=ALLOWLIST_FORMATS,
            class_names=class_names,
            # A split starts from the sorted list; its subsets are shuffled below.
            shuffle=shuffle_files and not validation_split,
            seed=seed,
            follow_links=follow_links,
            verbose=verbose,
        )
        if label_mode == "binary" and len(class_names) != 2:
            raise ValueError(
                "`label_mode='binary'` needs exactly 2 classes. "
                f"Received: class_names={class_names}"
            )
        _report_unlisted_files(directory, unlisted)

        return datasets_from_paths(
            image_paths,
            labels,
            label_mode=label_mode,
            class_names=class_names,
            split_groups=labels,
            source=f"directory {directory}",
            options=options,
        )


class LoadOptions(collections.namedtuple(
    "LoadOptions",
    "size resize_mode color_mode interpolation stride batch_size shuffle seed "
    "validation_split subset horizontal_flip on_bad_image cache_images verbose",
)):
    """The checked image and split arguments shared by the FCN dataset
    makers (`check_arguments`): `size` is `(height, width)`,
    `interpolation` lower case."""


def check_arguments(*, color_mode, image_size, resize_mode, interpolation,
                    stride, on_bad_image, cache_images, batch_size,
                    validation_split, subset, shuffle, seed, horizontal_flip,
                    verbose):
    """Checks the image and split arguments shared by the FCN dataset
    makers; returns them as `LoadOptions`."""
    if color_mode not in NUM_CHANNELS:
        raise ValueError(
            "`color_mode` must be one of 'rgb', 'rgba', 'grayscale'. "
            f"Received: color_mode={color_mode}"
        )
    if resize_mode not in RESIZE_MODES:
        raise ValueError(
            f"`resize_mode` must be one of {RESIZE_MODES}. "
            f"Received: resize_mode={resize_mode!r}"
        )
    size = _check_image_size(image_size, resize_mode)
    interpolation = str(interpolation).lower()
    if interpolation not in INTERPOLATIONS:
        raise ValueError(
            f"`interpolation` must be one of {INTERPOLATIONS}. "
            f"Received: interpolation={interpolation}"
        )
    if not isinstance(stride, int) or isinstance(stride, bool) or stride < 1:
        raise ValueError(
            f"`stride` must be a positive integer. Received: stride={stride!r}"
        )
    if on_bad_image not in ON_BAD_IMAGE:
        raise ValueError(
            f"`on_bad_image` must be one of {ON_BAD_IMAGE}. "
            f"Received: on_bad_image={on_bad_image!r}"
        )
    if not isinstance(cache_images, bool):
        raise ValueError(
            "`cache_images` must be True or False. "
            f"Received: cache_images={cache_images!r}"
        )
    if batch_size is not None and (
        not isinstance(batch_size, int) or batch_size < 1
    ):
        raise ValueError(
            "`batch_size` must be a positive integer or None. "
            f"Received: batch_size={batch_size!r}"
        )
    dataset_utils.check_validation_split_arg(validation_split, subset, shuffle, seed)
    if validation_split and seed is None:
        # Keras asks for a seed only when shuffling; our split is seeded
        # whatever `shuffle` is, so the two calls must share the seed.
        raise ValueError(
            "`validation_split` needs a `seed`, whatever `shuffle` is: the "
            "training and validation calls split the same seeded order, so "
            "pass the same seed to both. Received: seed=None"
        )
    return LoadOptions(
        size=size, resize_mode=resize_mode, color_mode=color_mode,
        interpolation=interpolation, stride=stride, batch_size=batch_size,
        shuffle=shuffle, seed=seed, validation_split=validation_split,
        subset=subset, horizontal_flip=horizontal_flip,
        on_bad_image=on_bad_image, cache_images=cache_images, verbose=verbose,
    )


def datasets_from_paths(
    image_paths,
    labels,
    *,
    label_mode,
    class_names,
    split_groups,
    source,
    options,
):
    """The dataset (two for `subset="both"`) of listed files and labels.

    The part of the FCN dataset makers after the files are listed: the
    seeded split (by `split_groups`, one value per file, stratified; None
    for no stratification), the bad-file scan (a skipped file's label
    leaves with it), the loader and the tf.data pipeline. `image_paths` are
    in the order the split starts from; `options` come from
    `check_arguments`, their `seed` an int. `label_mode` is one of
    `fcn_image_dataset_from_directory`'s, or `"float"`: `labels` are then
    float32 arrays, one row (a scalar or a vector) per file, delivered as
    they are. `source` names where the files come from in errors.
    """
    (size, resize_mode, color_mode, interpolation, stride, batch_size, shuffle,
     seed, validation_split, subset, horizontal_flip, on_bad_image,
     cache_images, verbose) = options
    # Cached images are reshuffled whole each epoch (see the caller).
    shuffle_files = shuffle and not cache_images
    datasets = []
    for name in ["training", "validation"] if subset == "both" else [subset]:
        paths, subset_labels = _subset(
            image_paths,
            labels,
            split_groups,
            validation_split=validation_split,
            subset=name,
            shuffle=shuffle_files,
            seed=seed,
            verbose=verbose,
        )
        found = len(paths)
        paths, subset_labels, infos = fcn_image_scan.check_files(
            paths, subset_labels, on_bad_image
        )
        if verbose and len(paths) < found:
            io_utils.print_msg(
                f"Skipped {found - len(paths)} bad files (see the warnings); "
                f"using {len(paths)}."
            )
        if not paths:
            raise ValueError(
                f"No {name + ' ' if name else ''}images found in {source}. "
                f"Allowed formats: {ALLOWLIST_FORMATS}"
            )
        loader = ImageLoader(resize_mode, size, color_mode, interpolation, stride,
                             paths, infos)
        undecodable = []
        dataset = paths_to_dataset(
            loader,
            undecodable,
            subset_labels,
            label_mode=label_mode,
            num_classes=len(class_names) if class_names else 0,
            batch_size=batch_size,
            # As Keras: the validation half of subset="both" is not shuffled.
            shuffle=shuffle and not (subset == "both" and name == "validation"),
            seed=seed,
            horizontal_flip=horizontal_flip and name != "validation",
            cache=cache_images,
        )
        dataset.class_names = class_names
        dataset.file_paths = paths
        dataset.undecodable_paths = undecodable
        datasets.append(dataset)
    return datasets if subset == "both" else datasets[0]


@contextlib.contextmanager
def gc_paused():
    """Pauses Python's cyclic garbage collector (if on) for a block."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _subset(paths, labels, groups, *, validation_split, subset, shuffle, seed,
            verbose):
    """The paths and labels of `subset` (all when None), in file order or,
    with `shuffle`, in an order seeded by `seed`; the split is stratified
    by `groups` (one value per path; None: not stratified)."""
    if not validation_split:
        return paths, labels
    if groups is None:
        groups = np.zeros(len(paths))
    training, validation = fcn_image_split.stratified_split(
        groups, validation_split, seed
    )
    chosen = training if subset == "training" else validation
    if verbose:
        io_utils.print_msg(f"Using {len(chosen)} files for {subset}.")
    if shuffle:
        chosen = np.random.default_rng(seed).permutation(chosen)
    paths = [paths[i] for i in chosen]
    if labels is not None:
        labels = np.asarray(labels)[chosen]
    return paths, labels


def _check_image_size(image_size, resize_mode):
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    if (
        not isinstance(image_size, (list, tuple))
        or len(image_size) != 2
        or not all(isinstance(s, int) and s > 0 for s in image_size)
    ):
        raise ValueError(
            "`image_size` must be a positive int S, or (height, width). "
            f"Received: image_size={image_size}"
        )
    if resize_mode == "native" and image_size[0] != image_size[1]:
        raise ValueError(
            "`resize_mode='native'` takes the shorter side S as `image_size`; "
            f"it keeps each image's own aspect ratio. Received: "
            f"image_size={image_size}"
        )
    return tuple(image_size)


def _report_unlisted_files(directory, unlisted):
    """Warns about files that Keras' allowlist leaves out of the dataset.

    Only warns, whatever `on_bad_image` says: like Keras, the dataset is made
    of the allowed formats; dotfiles (.DS_Store, ...) pass silently.
    """
    for path in unlisted:
        warnings.warn(
            f"Skipped {path}: not one of the image formats "
            f"{ALLOWLIST_FORMATS}. Convert it, or move it out of "
            f"{directory} to silence this warning.",
            stacklevel=3,
        )
