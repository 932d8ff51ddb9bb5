"""The tf.data pipeline of one subset of `fcn_image_dataset`.

`paths_to_dataset` turns checked files (an `fcn_image_loader.ImageLoader`)
into the dataset: records with flips and labels, shuffled, decoded in
parallel, batched (by shape for `"native"`), prefetched. Two ways:

- streamed (the default): each epoch shuffles and flips the records, then
  decodes them;
- cached (`cache_images=True`): the images are decoded once, during the
  first epoch, in file order, and kept in memory; each epoch then shuffles
  and flips the kept images.

Either way a file that fails to decode is left out with a warning, and a
batched epoch keeps its length (`fcn_decode_recovery`).
"""

import numpy as np

from keras.src.utils import dataset_utils
from keras.src.utils.fcn_decode_recovery import decode_unbatched
from keras.src.utils.fcn_decode_recovery import fill_epoch
from keras.src.utils.fcn_decode_recovery import load_batches
from keras.src.utils.fcn_decode_recovery import undecodable_reporter
from keras.src.utils.fcn_image_loader import flipped
from keras.src.utils.module_utils import tensorflow as tf


def paths_to_dataset(
    loader,
    undecodable,
    labels,
    *,
    label_mode,
    num_classes,
    batch_size,
    shuffle,
    seed,
    horizontal_flip,
    cache,
):
    """The dataset of one subset: the files of `loader` with their `labels`.

    With `cache`, the images are decoded once, in file order, and kept in
    memory; the shuffle and flips then apply to the decoded images. Files
    that fail to decode are added to the list `undecodable`.
    """
    make = _cached if cache else _streamed
    ds = make(
        loader,
        undecodable,
        labels,
        label_mode=label_mode,
        num_classes=num_classes,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        horizontal_flip=horizontal_flip,
    )
    return ds.prefetch(tf.data.AUTOTUNE)


def _streamed(loader, undecodable, labels, *, label_mode, num_classes,
              batch_size, shuffle, seed, horizontal_flip):
    """Records shuffled and flipped each epoch, then decoded (a batch of
    records at a time: a file that fails to decode leaves its batch)."""
    ds = _records(loader, labels, label_mode, num_classes,
                  flips=horizontal_flip, seed=seed)
    if shuffle:
        ds = ds.shuffle(buffer_size=batch_size * 8 if batch_size else 1024, seed=seed)
    load = _record_loader(loader, with_flip=horizontal_flip)
    if batch_size is None:
        report = undecodable_reporter(undecodable, "the data", replaced=False)
        return decode_unbatched(ds, load, loader.resize_mode, report)
    # Grouped by the records' native size: not the decoded images, for memory.
    ds, batches = _batched(ds, loader, batch_size,
                           shape_of=lambda element: element[0]["native_size"])
    report = undecodable_reporter(undecodable, "its batch", replaced=True)
    return fill_epoch(load_batches(ds, load, batch_size, report), batches)


def _cached(loader, undecodable, labels, *, label_mode, num_classes,
            batch_size, shuffle, seed, horizontal_flip):
    """Images decoded once, in file order, kept in memory; shuffled,
    flipped and batched each epoch."""
    ds = _records(loader, labels, label_mode, num_classes, flips=False, seed=seed)
    report = undecodable_reporter(undecodable, "the images kept in memory",
                                  replaced=False)
    ds = decode_unbatched(ds, _record_loader(loader, with_flip=False),
                          loader.resize_mode, report)
    ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(len(loader.records["path"]), seed=seed)
    if horizontal_flip:
        ds = tf.data.Dataset.zip((ds, _flips(seed))).map(
            _flip_image, num_parallel_calls=tf.data.AUTOTUNE)
    if batch_size is None:
        return ds
    ds, batches = _batched(ds, loader, batch_size,
                           shape_of=lambda element: tf.shape(element[0])[:2])
    return fill_epoch(ds, batches)


def _records(loader, labels, label_mode, num_classes, *, flips, seed):
    """The dataset of `(record, flip, label)` elements, without the flip
    unless `flips` and without the label if there is no `label_mode`."""
    parts = [tf.data.Dataset.from_tensor_slices(loader.records)]
    if flips:
        parts.append(_flips(seed))
    if label_mode == "float":
        # Scores (regression targets, distributions): delivered as they are.
        parts.append(tf.data.Dataset.from_tensor_slices(
            np.asarray(labels, dtype="float32")))
    elif label_mode:
        parts.append(
            dataset_utils.labels_to_dataset_tf(labels, label_mode, num_classes)
        )
    return tf.data.Dataset.zip(tuple(parts)) if len(parts) > 1 else parts[0]


def _record_loader(loader, *, with_flip):
    """`load(*element)`: the image (with its label) of one `_records`
    element."""
    def load(record, *rest):
        rest = list(rest)
        flip = rest.pop(0) if with_flip else None
        img = loader.load(record, flip)
        return (img, *rest) if rest else img

    return load


def _batched(ds, loader, batch_size, *, shape_of):
    """`(batched ds, batches an epoch)`; `"native"` batches hold one shape,
    `shape_of(element)` (the element as a tuple)."""
    if loader.resize_mode != "native":
        batches = -(-len(loader.records["path"]) // batch_size)
        return ds.batch(batch_size), batches

    def shape_key(*element):
        shape = tf.cast(shape_of(element), "int64")
        return shape[0] * 65536 + shape[1]

    ds = ds.group_by_window(
        key_func=shape_key,
        reduce_func=lambda key, window: window.batch(batch_size),
        window_size=batch_size,
    )
    # The number of batches from each file's native size (read from its
    # header by the scan), so no image is decoded at build time.
    _, per_shape = np.unique(loader.records["native_size"], axis=0,
                             return_counts=True)
    return ds, int(np.sum(-(-per_shape // batch_size)))


def _flip_image(element, flip):
    if isinstance(element, tuple):  # (image, label)
        return (flipped(element[0], flip), *element[1:])
    return flipped(element, flip)


def _flips(seed):
    """A stream of random booleans, fresh each epoch, reproducible from
    `seed`."""
    return tf.data.Dataset.random(
        seed=seed, rerandomize_each_iteration=True).map(lambda r: r % 2 == 1)
