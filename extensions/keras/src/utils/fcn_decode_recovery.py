"""Recovering from files that fail to decode during an epoch (tf.data).

The bad-file scan (`fcn_image_scan`) checks each file's structure before
the dataset exists; what it cannot see, damage inside a JPEG's compressed
data, is caught here, while the dataset is iterated:

- `load_batches` decodes a batch of records at a time and leaves a file
  that fails out of its batch, with one warning naming it
  (`undecodable_reporter`), delivering the others;
- `decode_unbatched` does the same for unbatched or cached datasets;
- `fill_epoch` replaces a batch none of whose files decoded by another
  batch of the data (from a fresh pass over it), so that every epoch has
  the length the dataset states and no empty batch reaches the model
  (BatchNormalization's moments over 0 images are NaN).
"""

import warnings

from keras.src.utils.module_utils import tensorflow as tf

UNBATCHED_CHUNK = 32  # records decoded together when unbatched


def load_batches(ds, load, batch_size, report):
    """The batches of records `ds` decoded by `load(*element)`, less the
    files that fail to decode (`report(paths, whole_batch)` is told) and
    the batches left empty."""
    return ds.interleave(
        lambda *batch: load_batch(batch, load, batch_size, report),
        cycle_length=2, num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    ).filter(not_empty)


def decode_unbatched(ds, load, resize_mode, report):
    """The images (with labels) of the unbatched dataset elements `ds`,
    less those that fail to decode."""
    # Images of one shape (not "native") can be decoded 32 at a time.
    chunk = 1 if resize_mode == "native" else UNBATCHED_CHUNK
    return load_batches(ds.batch(chunk), load, chunk, report).unbatch()


def fill_epoch(ds, batches):
    """The batched dataset `ds`, made up to `batches` batches an epoch.

    A batch none of whose files decoded is gone: the epoch is made up to
    its length from a fresh pass (reshuffled, reflipped), only started
    once this pass has ended short. The empty batch between the passes
    makes this pass run to its end (a cache is only kept when read to the
    end), and is then filtered out. (An epoch still short after the fresh
    pass, most files undecodable, makes TF raise.)
    """
    ds = (ds.concatenate(empty_batch(ds)).concatenate(ds)
          .take(batches + 1).filter(not_empty))
    # The interleave hides the length; Keras needs it to show progress and
    # to not warn that the data "ran out" after the first epoch.
    return ds.apply(tf.data.experimental.assert_cardinality(batches))


def load_batch(batch, load, batch_size, report_undecodable):
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
    decoded = decoded.concatenate(empty_batch(decoded)).take(1)

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


def empty_batch(ds):
    """A dataset of one batch of 0 elements of the batched dataset `ds`."""
    return tf.data.Dataset.from_tensors(tf.nest.map_structure(
        lambda spec: tf.zeros([0] + [d or 0 for d in spec.shape[1:]], spec.dtype),
        ds.element_spec,
    ))


def not_empty(*batch):
    return tf.shape(tf.nest.flatten(batch)[0])[0] > 0


def undecodable_reporter(found, left_out, replaced):
    """The `report_undecodable(paths, whole_batch)` of `load_batch`: one
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
