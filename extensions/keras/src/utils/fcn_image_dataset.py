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
exists: every file is checked once per process (its verdict is remembered
while the file is unchanged). A JPEG or PNG is checked from its structure
without decoding it (`fcn_image_headers`: header segments or chunks, CRCs,
the JPEG's end marker, which a truncated file lacks); any other or unusual
file is opened with PIL (see `fcn_image_files` for what counts as bad).
With many files the check runs in forked worker processes (it is Python,
held by the GIL). A bad file is skipped with one warning naming it, or
raises with `on_bad_image="raise"`. With a split, only the subset's files
are read (after the split, so a bad file never moves another file across
subsets). What a structural check cannot see, damage inside a JPEG's
compressed data, is caught during the epoch: such a file is left out of
its batch with one warning naming it, and the others are delivered. A
batch none of whose files decodes is replaced by another batch of the
data (from a fresh pass over it), so that every epoch has the length the
dataset states and no empty batch reaches the model (BatchNormalization's
moments over 0 images are NaN). The dataset records the files that failed
in `undecodable_paths`.

Intentional differences from Keras' loader, all for correctness: bad files
are skipped instead of stopping training mid-epoch; EXIF orientation is
applied; the `validation_split` above; files that TF decodes wrongly (palette BMP) or refuses (1-bit BMP,
GIF or BMP in grayscale, JPEG in RGBA) and CMYK JPEGs go through PIL; the
pad placement is exact; a list of `labels` is not shuffled in place; images
are always float32 in [0, 255] (Keras gives uint8 for `"nearest"`). Only
channels-last tf.data datasets are made.
"""

import contextlib
import gc
import io
import multiprocessing
import os
import warnings

import numpy as np

from keras.src.utils import dataset_utils
from keras.src.utils import fcn_image_files
from keras.src.utils import fcn_image_headers
from keras.src.utils import fcn_image_index
from keras.src.utils import fcn_image_split
from keras.src.utils import image_dataset_utils
from keras.src.utils import image_utils
from keras.src.utils import io_utils
from keras.src.utils.module_utils import tensorflow as tf

RESIZE_MODES = ("stretch", "crop", "pad", "multicrop", "native")
ON_BAD_IMAGE = ("skip", "raise")
# The bad-file scan runs in this many forked processes at most, from this
# many new files on (below, the fork costs more than it saves).
MAX_SCAN_PROCESSES = 8
PROCESS_SCAN_MIN_FILES = 4096
ALLOWLIST_FORMATS = image_dataset_utils.ALLOWLIST_FORMATS
NUM_CROPS = 3
UNBATCHED_CHUNK = 32  # records decoded together when `batch_size=None`
NUM_CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}
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

    if seed is None:
        seed = np.random.randint(1e6)
    # Cached images are reshuffled whole each epoch: they are kept in file
    # order, which the seeded shuffle of the list would only permute.
    shuffle_files = shuffle and not cache_images
    # A build allocates a few tuples per file; with TF loaded, the cyclic
    # GC walked its ~300k objects again and again meanwhile (0.4 s per
    # 100k files), and in the forked scan workers it copied every page.
    with _gc_paused():
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

        datasets = []
        for name in ["training", "validation"] if subset == "both" else [subset]:
            paths, subset_labels = _subset(
                image_paths, labels, validation_split, name, shuffle_files, seed,
                verbose,
            )
            found = len(paths)
            paths, subset_labels, infos = _check_files(paths, subset_labels, on_bad_image)
            if verbose and len(paths) < found:
                io_utils.print_msg(
                    f"Skipped {found - len(paths)} bad files (see the warnings); "
                    f"using {len(paths)}."
                )
            if not paths:
                raise ValueError(
                    f"No {name + ' ' if name else ''}images found in directory "
                    f"{directory}. Allowed formats: {ALLOWLIST_FORMATS}"
                )
            loader = ImageLoader(resize_mode, size, color_mode, interpolation, stride,
                                 paths, infos)
            undecodable = []
            dataset = _paths_to_dataset(
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
def _gc_paused():
    """Pauses Python's cyclic garbage collector (if on) for a block."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _subset(paths, labels, validation_split, subset, shuffle, seed, verbose):
    """The paths and labels of `subset` (all when None), in file order or,
    with `shuffle`, in an order seeded by `seed`."""
    if not validation_split:
        return paths, labels
    # Stratified by label where there are labels.
    groups = np.zeros(len(paths)) if labels is None else labels
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


def _check_files(paths, labels, on_bad_image):
    """Inspects every file; returns the good paths, their labels and infos."""
    # PIL warns about large images before we refuse them with our own message.
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", fcn_image_files.pil_image.DecompressionBombWarning
        )
        results = _inspect_all(paths)
    bad = sorted(str(r) for r in results if isinstance(r, Exception))
    if bad and on_bad_image == "raise":
        more = f" (and {len(bad) - 1} more bad files)" if len(bad) > 1 else ""
        raise fcn_image_files.BadImageError(
            f"{bad[0]}{more}. Pass on_bad_image='skip' to leave bad files out."
        )
    for message in bad:
        warnings.warn(f"Skipped: {message}", stacklevel=3)
    keep = [i for i, r in enumerate(results) if not isinstance(r, Exception)]
    if labels is not None:
        labels = np.asarray(labels)[keep] if isinstance(labels, np.ndarray) else [
            labels[i] for i in keep
        ]
    return [paths[i] for i in keep], labels, [results[i] for i in keep]


# path -> ((size, mtime, pixel limit), ImageInfo or BadImageError) of the
# files this process has inspected: the train, validation and test datasets
# of every experiment, built from one folder, read each file once in all.
_INSPECTED = {}


def _inspect_all(paths):
    """The `ImageInfo` or `BadImageError` of each path: remembered if the
    file is unchanged since this process inspected it, else inspected (in
    worker processes when there are many)."""
    results = [None] * len(paths)
    todo = []
    for i, path in enumerate(paths):
        known = _INSPECTED.get(path)
        if known is None:
            todo.append(i)
            continue
        key = _key(path)
        if key is not None and known[0] == key:
            results[i] = known[1]
        else:
            todo.append(i)
    for i, (key, result) in zip(todo, _inspect_new([paths[i] for i in todo])):
        if key is not None:
            _INSPECTED[paths[i]] = (key, result)
        results[i] = result
    return results


def _inspect_new(paths):
    """`_inspect_keyed` of each path, in forked processes when they pay off.

    The check is Python (struct parsing) holding the GIL: threads do not use
    a second core, processes do. Forked (as Keras' `PyDataset` workers are
    on Linux): they only read files and return tuples.
    """
    cores = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
             else os.cpu_count() or 1)
    workers = min(cores, MAX_SCAN_PROCESSES)
    if (len(paths) < PROCESS_SCAN_MIN_FILES or workers < 2
            or "fork" not in multiprocessing.get_all_start_methods()):
        return [_inspect_keyed(path) for path in paths]
    # A few chunks per worker, so that one slow chunk does not stall the end.
    size = max(1, -(-len(paths) // (4 * workers)))
    chunks = [paths[i: i + size] for i in range(0, len(paths), size)]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        rows = pool.map(_inspect_chunk, chunks)
        pool.close()
        pool.join()  # Workers gone (and their CPU time accounted) on return.
    info = fcn_image_files.ImageInfo
    return [(key, info(*r) if isinstance(r, tuple) else r)
            for chunk in rows for key, r in chunk]


def _inspect_chunk(paths):
    """`_inspect_keyed` of each path, `ImageInfo`s as plain tuples: they
    come back pickled, and a namedtuple costs 5 times as much to unpickle."""
    rows = [_inspect_keyed(path) for path in paths]
    return [(key, tuple(r) if isinstance(r, tuple) else r) for key, r in rows]


def _key(path):
    """What must not change for a remembered verdict to hold; None if the
    file cannot be read."""
    try:
        return _stat_key(os.stat(path))
    except OSError:
        return None


def _stat_key(stat):
    return (stat.st_size, stat.st_mtime_ns,
            fcn_image_files.pil_image.MAX_IMAGE_PIXELS)


def _inspect_keyed(path):
    """`(key, ImageInfo or BadImageError)` of a file: read once for both
    (so a file changed meanwhile is inspected again next time); the key is
    None if the file cannot be read."""
    try:
        stat, info = fcn_image_headers.stat_and_read_header(path)
    except OSError:
        stat = info = None  # PIL says what is wrong.
    if info is None:
        # Not a plain JPEG or PNG, or a bad one: PIL's verdict.
        try:
            info = fcn_image_files.inspect_image_file_with_pil(path)
        except fcn_image_files.BadImageError as e:
            info = e
    return (None if stat is None else _stat_key(stat)), info


class ImageLoader:
    """Decodes and resizes the checked files of one dataset (tf.data).

    `records` holds the per-file tensors the pipeline carries; `load(record,
    flip)` is the per-image graph function. It is specialized to the files:
    the branches for PIL decoding and EXIF rotation exist only if some file
    needs them, so a folder of plain JPEGs pays for neither.
    """

    def __init__(self, resize_mode, size, color_mode, interpolation, stride,
                 paths, infos):
        self.resize_mode = resize_mode
        self.size = size
        self.color_mode = color_mode
        self.channels = NUM_CHANNELS[color_mode]
        self.interpolation = interpolation
        self.stride = stride
        count = len(infos)
        use_pil = np.fromiter((not self._tf_decodes(i) for i in infos), bool, count)
        # PIL applies the orientation itself.
        orientation = np.fromiter((i.orientation for i in infos), np.int32, count)
        orientation[use_pil] = 1
        self.records = {
            # Objects: the dataset's own path strings, not a fixed-width
            # copy 4 bytes per character of the longest path.
            "path": np.asarray(paths, dtype=object),
            "use_pil": use_pil,
            "rotated": orientation != 1,
            "orientation": orientation,
        }
        if resize_mode == "native":
            self.records["native_size"] = np.asarray(
                [self.native_size(*upright_size(info)) for info in infos],
                dtype=np.int32,
            ).reshape(-1, 2)

    def _tf_decodes(self, info):
        """Whether TF's decoder gives the same pixels as PIL for this file
        (measured: TF misreads palette BMPs, refuses 1-bit BMPs, GIFs and
        BMPs in grayscale, JPEGs in RGBA; PIL handles CMYK JPEGs)."""
        if info.format == "JPEG":
            return info.mode in ("RGB", "L") and self.channels in (1, 3)
        if info.format == "PNG":
            return info.mode != "1"
        if info.format == "GIF":
            return self.channels == 3
        if info.format == "BMP":
            return info.mode in ("RGB", "RGBA") and self.channels in (3, 4)
        return False

    def native_size(self, width, height):
        """`(height, width)` for `"native"`: shorter side S, longer side
        rounded half up to a multiple of the stride (and at least S)."""
        side = self.size[0]
        short, long = min(width, height), max(width, height)
        long = max(side, self.stride * int(long * side / short / self.stride + 0.5))
        return (long, side) if height > width else (side, long)

    # ------------------------------------------------------- graph side

    def load(self, record, flip=None):
        """The float32 image of one record, flipped left-right if `flip`."""
        data = tf.io.read_file(record["path"])
        if self.resize_mode == "crop":
            img = self._crop(self._decode(data, record))
        elif self.resize_mode == "pad":
            img = self._pad(self._decode(data, record))
        elif self.resize_mode == "multicrop":
            img = self._multicrop(self._decode(data, record))
        elif self.resize_mode == "native":
            img = self._resize(self._decode(data, record), record["native_size"])
        else:
            img = self._resize(self._decode(data, record), self.size)
        img = tf.cast(img, "float32")
        return img if flip is None else flipped(img, flip)

    def _select(self, name, record, if_true, if_false):
        """`if_true()` for records whose `name` is True, else `if_false()`;
        no branch in the graph when all files agree."""
        values = self.records[name]
        if values.all():
            return if_true()
        if not values.any():
            return if_false()
        return tf.cond(record[name], if_true, if_false)

    def _decode(self, data, record):
        def with_tf():
            img = tf.io.decode_image(data, channels=self.channels,
                                     expand_animations=False)
            return self._select("rotated", record,
                                lambda: orient(img, record["orientation"]),
                                lambda: img)

        def with_pil():
            img = tf.numpy_function(self._pil_decode, [data], tf.uint8, stateful=False)
            img.set_shape((None, None, self.channels))
            return img

        return self._select("use_pil", record, with_pil, with_tf)

    def _pil_decode(self, data):
        img = fcn_image_files.open_image(io.BytesIO(data), self.color_mode)
        return np.asarray(img, dtype=np.uint8).reshape(img.size[1], img.size[0], -1)

    def _resize(self, images, size):
        # What Keras' `smart_resize` and `resize_with_pad` resize with.
        return tf.image.resize(images, size, method=self.interpolation)

    def _crop(self, img):
        return image_utils.smart_resize(
            img, self.size, interpolation=self.interpolation,
            data_format="channels_last", backend_module=tf_backend(),
        )

    def _multicrop(self, img):
        """Resizes to cover the target (`fcn_image_loading.cover_size`),
        then cuts three crops: start, centre, end."""
        shape = tf.shape(img, out_type="int64")
        height, width = shape[0], shape[1]
        target_height, target_width = (tf.constant(t, "int64") for t in self.size)
        wide = width * target_height >= height * target_width
        # Rounded half up, as `fcn_image_loading.cover_size`.
        cover_width = (2 * width * target_height + height) // (2 * height)
        cover_height = (2 * height * target_width + width) // (2 * width)
        new_height = tf.where(wide, target_height,
                              tf.maximum(cover_height, target_height))
        new_width = tf.where(wide, tf.maximum(cover_width, target_width),
                             target_width)
        img = self._resize(img, tf.cast(tf.stack([new_height, new_width]), "int32"))
        top, left = new_height - target_height, new_width - target_width
        crops = tf.stack([
            img[t:t + target_height, l:l + target_width]
            for t, l in [(0, 0), (top // 2, left // 2), (top, left)]
        ])
        return tf.ensure_shape(crops, (NUM_CROPS, *self.size, self.channels))

    def _pad(self, img):
        """Resizes to fit and pads, as `fcn_image_loading.pad_placement`."""
        shape = tf.shape(img, out_type="int64")
        height, width = shape[0], shape[1]
        target_height, target_width = (tf.constant(t, "int64") for t in self.size)
        wide = width * target_height >= height * target_width
        new_height = tf.where(
            wide, tf.maximum(height * target_width // width, 1), target_height
        )
        new_width = tf.where(
            wide, target_width, tf.maximum(width * target_height // height, 1)
        )
        zero = tf.constant(0, "int64")
        top = tf.where(
            wide, (target_height * width - height * target_width) // (2 * width), zero
        )
        left = tf.where(
            wide, zero, (target_width * height - width * target_height) // (2 * height)
        )
        img = self._resize(img, tf.cast(tf.stack([new_height, new_width]), "int32"))
        img = tf.image.pad_to_bounding_box(
            img, tf.cast(top, "int32"), tf.cast(left, "int32"), *self.size
        )
        return tf.ensure_shape(img, (*self.size, self.channels))


def orient(img, orientation):
    """Applies an EXIF orientation (1 to 8) as `PIL.ImageOps.exif_transpose`."""
    def transposed():
        return tf.transpose(img, (1, 0, 2))

    return tf.switch_case(orientation - 1, [
        lambda: img,                                   # 1: upright
        lambda: tf.reverse(img, [1]),                  # 2: mirrored
        lambda: tf.reverse(img, [0, 1]),               # 3: rotated 180
        lambda: tf.reverse(img, [0]),                  # 4: flipped
        transposed,                                    # 5: transposed
        lambda: tf.reverse(transposed(), [1]),         # 6: rotated 90 cw
        lambda: tf.reverse(transposed(), [0, 1]),      # 7: transversed
        lambda: tf.reverse(transposed(), [0]),         # 8: rotated 90 ccw
    ])


def flipped(img, flip):
    """`img` flipped left-right if `flip`; the crops of a multicrop image
    share the flip."""
    # Width is the second-last axis for (h, w, c) and (3, h, w, c) alike.
    return tf.cond(flip, lambda: tf.reverse(img, [-2]), lambda: img)


def upright_size(info):
    """`(width, height)` of a checked file once its EXIF orientation is applied."""
    if info.orientation in fcn_image_files.TRANSPOSING_ORIENTATIONS:
        return info.height, info.width
    return info.width, info.height


def tf_backend():
    from keras.src.backend import tensorflow

    return tensorflow


def _load_batch(batch, load, batch_size, report_undecodable):
    """A dataset of one batch: `batch`, a batch of dataset elements (records
    with flips and labels), decoded, less any file that fails to decode
    (`report_undecodable(paths, whole_batch)`, in a `tf.py_function`). The
    scan checked each file's structure; only damage inside the compressed
    data (which JPEG cannot detect) gets here.
    """
    record = batch[0]
    slot = tf.range(tf.shape(record["path"], out_type="int64")[0])
    elements = tf.data.Dataset.from_tensor_slices((slot, batch))

    def load_one(slot, element):
        return slot, load(*element)

    decoded = elements.map(load_one, num_parallel_calls=tf.data.AUTOTUNE)
    decoded = decoded.ignore_errors().batch(batch_size)
    # An empty batch if every file failed, so that they are reported too
    # (and then filtered out by the caller).
    decoded = decoded.concatenate(_empty_batch(decoded)).take(1)

    def report(kept, output):
        dropped = tf.sparse.to_dense(tf.sets.difference(slot[None], kept[None]))[0]
        warned = tf.cond(
            tf.size(dropped) > 0,
            lambda: tf.py_function(
                report_undecodable,
                [tf.gather(record["path"], dropped),
                 tf.equal(tf.size(dropped), tf.size(slot))],
                tf.bool,
            ),
            lambda: tf.constant(False),
        )
        with tf.control_dependencies([warned]):
            return tf.nest.map_structure(tf.identity, output)

    return decoded.map(report)


def _empty_batch(ds):
    """A dataset of one batch of 0 elements of the batched dataset `ds`."""
    return tf.data.Dataset.from_tensors(tf.nest.map_structure(
        lambda spec: tf.zeros([0] + [d or 0 for d in spec.shape[1:]], spec.dtype),
        ds.element_spec,
    ))


def _not_empty(*batch):
    return tf.shape(tf.nest.flatten(batch)[0])[0] > 0


def _undecodable_reporter(found, left_out, replaced):
    """The `report_undecodable(paths, whole_batch)` of `_load_batch`: one
    warning per file saying what was done, and each file added once to
    the list `found`. `left_out`: what the file is left out of; `replaced`:
    whether a batch with no file left is replaced by another batch of the
    data (batched datasets)."""
    def report(paths, whole_batch):
        for path in paths.numpy():
            path = path.decode()
            if path not in found:
                found.append(path)
            if whole_batch and replaced:
                done = ("no file of its batch decoded, so the batch is "
                        "replaced by another batch of the data (the epoch "
                        "keeps its length)")
            else:
                done = f"it is left out of {left_out}"
            warnings.warn(
                f"Skipped {path}: it failed to decode during the epoch "
                f"(corrupt image data); {done}. Replace or remove the file."
            )
        return True

    return report


def _paths_to_dataset(loader, undecodable, labels, label_mode, num_classes,
                      batch_size, shuffle, seed, horizontal_flip, cache):
    """The dataset of one subset: records (with flips and labels), shuffled,
    decoded in parallel, batched (by shape for `"native"`), prefetched.
    With `cache`, the images are decoded once, in file order, and kept in
    memory; the shuffle and flips then apply to the decoded images. Files
    that fail to decode are added to the list `undecodable`."""
    flip_records = horizontal_flip and not cache
    parts = [tf.data.Dataset.from_tensor_slices(loader.records)]
    if flip_records:
        parts.append(_flips(seed))
    if label_mode:
        parts.append(
            dataset_utils.labels_to_dataset_tf(labels, label_mode, num_classes)
        )
    ds = tf.data.Dataset.zip(tuple(parts)) if len(parts) > 1 else parts[0]
    if shuffle and not cache:
        ds = ds.shuffle(buffer_size=batch_size * 8 if batch_size else 1024, seed=seed)

    def unpack(element):
        """(record, flip or None, label or None) of one dataset element."""
        element = element if isinstance(element, tuple) else (element,)
        record, rest = element[0], list(element[1:])
        flip = rest.pop(0) if flip_records else None
        return record, flip, rest

    def load(*element):
        record, flip, label = unpack(element)
        img = loader.load(record, flip)
        return (img, *label) if label else img

    # Decoded a batch of records at a time: a file that fails to decode
    # leaves its batch with a warning (see `_load_batch`).
    if cache or batch_size is None:
        ds = _decode_unbatched(ds, load, loader.resize_mode, _undecodable_reporter(
            undecodable, "the images kept in memory" if cache else "the data",
            replaced=False))
    if cache:
        ds = ds.cache()
        if shuffle:
            ds = ds.shuffle(len(loader.records["path"]), seed=seed)
        if horizontal_flip:
            def flip_image(element, flip):
                if isinstance(element, tuple):
                    return (flipped(element[0], flip), *element[1:])
                return flipped(element, flip)

            ds = tf.data.Dataset.zip((ds, _flips(seed))).map(
                flip_image, num_parallel_calls=tf.data.AUTOTUNE)
    if batch_size is None:
        return ds.prefetch(tf.data.AUTOTUNE)

    if loader.resize_mode == "native":
        # Grouped by shape: records by their native size (not the decoded
        # images, for memory), decoded images by theirs.
        def shape_key(*element):
            if cache:
                shape = tf.shape(element[0])[:2]  # (image, label) or (image,)
            else:
                shape = unpack(element)[0]["native_size"]
            shape = tf.cast(shape, "int64")
            return shape[0] * 65536 + shape[1]

        ds = ds.group_by_window(
            key_func=shape_key,
            reduce_func=lambda key, window: window.batch(batch_size),
            window_size=batch_size,
        )
        _, per_shape = np.unique(loader.records["native_size"], axis=0,
                                 return_counts=True)
        batches = int(np.sum(-(-per_shape // batch_size)))
    else:
        ds = ds.batch(batch_size)
        batches = -(-len(loader.records["path"]) // batch_size)
    if not cache:
        report = _undecodable_reporter(undecodable, "its batch", replaced=True)
        ds = ds.interleave(
            lambda *batch: _load_batch(batch, load, batch_size, report),
            cycle_length=2, num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        ).filter(_not_empty)
    # A batch none of whose files decoded is gone: the epoch is made up to
    # its length from a fresh pass (reshuffled, reflipped), only started
    # once this pass has ended short. The empty batch between the passes
    # makes this pass run to its end (a cache is only kept when read to
    # the end), and is then filtered out. (An epoch still short after the
    # fresh pass, most files undecodable, makes TF raise.)
    ds = (ds.concatenate(_empty_batch(ds)).concatenate(ds)
          .take(batches + 1).filter(_not_empty))
    # The interleave hides the length; Keras needs it to show progress and
    # to not warn that the data "ran out" after the first epoch.
    ds = ds.apply(tf.data.experimental.assert_cardinality(batches))
    return ds.prefetch(tf.data.AUTOTUNE)


def _flips(seed):
    """A stream of random booleans, fresh each epoch, reproducible from
    `seed`."""
    return tf.data.Dataset.random(
        seed=seed, rerandomize_each_iteration=True).map(lambda r: r % 2 == 1)


def _decode_unbatched(ds, load, resize_mode, report):
    """The images (with labels) of the unbatched dataset elements `ds`,
    less those that fail to decode."""
    # Images of one shape (not "native") can be decoded 32 at a time.
    chunk = 1 if resize_mode == "native" else UNBATCHED_CHUNK
    ds = ds.batch(chunk).interleave(
        lambda *batch: _load_batch(batch, load, chunk, report),
        cycle_length=2, num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return ds.filter(_not_empty).unbatch()
