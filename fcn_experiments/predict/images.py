"""Scoring image files with a trained FCN, each at its own size.

Every image keeps its aspect ratio: its shorter side goes to the model's
input size S (times each of `scales`), its longer side is rounded to the
network's stride, exactly as the training loaders' `"native"` mode does
(`keras.utils.fcn_image_dataset_from_directory`, whose `ImageLoader` decodes
the files here too: CMYK, 16-bit, palette, grayscale and EXIF-rotated images
come out as in training, small images are upscaled). Images of one shape are
batched together, and the model runs inside one `tf.function` with a
dynamic-size signature, so TF traces once per run instead of once per shape.

A model trained with `pooling="max"` outputs the per-class maximum of its
softmax map; those scores are normalized to sum to 1, as Keras'
crossentropy normalizes them in training. With several `scales`, the
normalized probabilities are averaged.

Score models (`ModelSource.task`, see `tasks`; the task fills each row): a regression model's one
linear output is the image's `score`, not normalized (with several
`scales`, the raw scores are averaged); a distribution model's softmax over
K bins is normalized and averaged as above, and its `score` and `std` are
the mean and standard deviation of that distribution over the bin values
1..K (the mean of the averaged distribution is the average of the scales'
means).

The heatmaps are drawn by `heatmaps`, from `score_map`'s map; the CSV and
markdown of the scores are written by `reports`.
"""

import dataclasses
import os
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from keras.utils import fcn_image_dataset
from keras.utils import fcn_image_files

from fcn_experiments import tasks
from fcn_experiments.errors import ModelSourceError
from fcn_experiments.errors import UsageError
from fcn_experiments.models.score_map import score_map_model
from fcn_experiments.predict.heatmaps import heatmap_name
from fcn_experiments.predict.heatmaps import save_heatmap
from fcn_experiments.predict.model_source import STRIDE


@dataclasses.dataclass
class ImageScore:
    """One row of the scores CSV: the class (or bin) probabilities, and for
    score models the score (and a distribution's standard deviation)."""

    path: str
    width: int | None = None
    height: int | None = None
    probabilities: np.ndarray | None = None
    error: str = ""
    heatmap: str = ""
    score: float | None = None
    std: float | None = None
    task: str = tasks.DEFAULT

    @property
    def scored(self):
        return self.probabilities is not None or self.score is not None


def parse_scales(text):
    """`"1,1.5,2"` -> `(1.0, 1.5, 2.0)`."""
    try:
        scales = tuple(float(part) for part in text.replace(",", " ").split())
    except ValueError:
        scales = ()
    if not scales or any(not s > 0 for s in scales):
        raise UsageError(
            "--scales takes positive numbers separated by commas, e.g. "
            f"1,1.5,2. Received: scales={text!r}"
        )
    return scales


def _inspect_all(paths):
    """`ImageInfo` or the `BadImageError` of each path (a thread pool)."""

    def inspect(path):
        try:
            return fcn_image_files.inspect_image_file(path)
        except fcn_image_files.BadImageError as error:
            return error

    with warnings.catch_warnings():
        # Refused with our own message instead.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with ThreadPoolExecutor(min(32, (os.cpu_count() or 1) + 4)) as pool:
            return list(pool.map(inspect, paths))


def scoring_function(model, preprocess, *, with_score_map=False):
    """`f(images) -> scores` (and the score map) as one `tf.function`.

    Its input signature has no fixed batch, height or width, so it is traced
    once for all shapes (`f.experimental_get_tracing_count()`).
    """
    import tensorflow as tf

    if with_score_map:
        model = score_map_model(model)

    @tf.function(
        input_signature=[tf.TensorSpec((None, None, None, 3), "float32")]
    )
    def score(images):
        return model(preprocess(images), training=False)

    return score


def _normalised(scores):
    scores = np.asarray(scores, dtype="float64")
    return scores / np.maximum(scores.sum(axis=-1, keepdims=True), 1e-12)


def predict_images(
    source,
    paths,
    *,
    size=None,
    scales=(1.0,),
    batch_size=8,
    heatmaps=None,
    verbose=1,
):
    """Scores image files with a trained model, each at its own size.

    Args:
        source: a `ModelSource` (`model_source.resolve_model_source`).
        paths: image files; a bad one gets an error, the rest are scored.
        size: the shorter side at scale 1 (default: the model's input size).
        scales: aspect-preserving rescalings whose probabilities (a
            regression model's raw scores) are averaged; the shorter side is
            `round(size * scale)`.
        batch_size: images per batch (of one shape).
        heatmaps: a folder for one PNG per image, at the first scale: the
            score map of its predicted class over it (for score models, see
            `heatmaps.heatmap_of`).
        verbose: 1 for a progress bar and a closing line with images/s.

    Returns:
        `(scores, stats)`: an `ImageScore` per path, in order, and a dict
        with `images_per_s`, `seconds`, `failed`, `shapes` (distinct input
        shapes) and `traces` (times TF traced the model).
    """
    if source.task not in tasks.TASKS:
        raise ModelSourceError(
            f"`source.task` must be one of {tasks.TASKS}. Received: "
            f"task={source.task!r}"
        )
    task = tasks.get(source.task)
    size, scales, sides = _check_request(
        source, size=size, scales=scales, batch_size=batch_size,
        heatmaps=heatmaps,
    )
    began = time.perf_counter()
    scores = [ImageScore(path, task=task.name) for path in paths]
    infos = _inspect_all(paths)
    for row, info in zip(scores, infos):
        if isinstance(info, Exception):
            row.error = str(info)
        else:
            row.width, row.height = fcn_image_dataset.upright_size(info)
    good = [i for i, info in enumerate(infos) if not isinstance(info, Exception)]
    score = scoring_function(
        source.model, source.preprocess, with_score_map=heatmaps is not None
    )
    if heatmaps is not None:
        os.makedirs(heatmaps, exist_ok=True)
    totals, done, shapes_seen = _score_scales(
        source, task, score=score, scores=scores, infos=infos, good=good,
        scales=list(zip(scales, sides)), batch_size=batch_size,
        heatmaps=heatmaps, verbose=verbose,
    )
    for i in good:
        if done[i] == len(scales):
            task.set_outputs(scores[i], totals[i] / len(scales))
        else:
            scores[i].error = (
                f"{paths[i]} passed the file check but failed to decode. "
                "Replace or remove the file."
            )
            scores[i].heatmap = ""
    seconds = time.perf_counter() - began
    scored = sum(row.scored for row in scores)
    stats = {
        "images_per_s": scored / seconds if seconds > 0 else 0.0,
        "seconds": seconds,
        "scored": scored,
        "failed": len(paths) - scored,
        "shapes": len(shapes_seen),
        "traces": score.experimental_get_tracing_count(),
    }
    if verbose:
        print(
            f"Scored {scored} images in {seconds:.1f} s "
            f"({stats['images_per_s']:.1f} images/s, {stats['shapes']} "
            f"shapes, {stats['traces']} trace(s)); {stats['failed']} failed."
        )
    return scores, stats


def _check_request(source, *, size, scales, batch_size, heatmaps):
    """`(size, scales, sides)` of a checked `predict_images` request."""
    size = int(size or source.input_size)
    scales = tuple(float(s) for s in scales)
    sides = [int(round(size * s)) for s in scales]
    if min(sides) < source.min_size:
        raise UsageError(
            f"{source.backbone} needs inputs of at least {source.min_size} px; "
            f"size {size} at scale {min(scales)} gives {min(sides)}. "
            f"Received: size={size}, scales={scales}"
        )
    if not isinstance(batch_size, int) or batch_size < 1:
        raise UsageError(
            f"--batch-size must be a positive integer. Received: "
            f"batch_size={batch_size!r}"
        )
    if source.fixed_size is not None and (
        scales != (1.0,) or heatmaps is not None
    ):
        raise ModelSourceError(
            f"{source.name} is Keras' original model: it takes "
            f"{source.fixed_size}x{source.fixed_size} inputs only and has no "
            "score map. Score it without --scales and --heatmaps, or use an "
            f"FCN experiment. Received: scales={scales}, heatmaps={heatmaps!r}"
        )
    return size, scales, sides


def _score_scales(source, task, *, score, scores, infos, good, scales,
                  batch_size, heatmaps, verbose):
    """Runs the model at every scale; returns the outputs summed per image,
    the scales each image was scored at, and the input shapes seen."""
    import keras

    paths = [row.path for row in scores]
    # The heatmap scale runs last, when the final prediction is known.
    runs = scales[1:] + scales[:1]
    totals = np.zeros((len(paths), len(source.class_names)))
    done = np.zeros((len(paths),), dtype=int)
    progress = (
        keras.utils.Progbar(len(good) * len(scales), unit_name="image")
        if verbose and good
        else None
    )
    shapes_seen, used_names = set(), set()
    for run, (_, side) in enumerate(runs if good else []):
        draw = heatmaps is not None and run == len(runs) - 1
        loader = _loader(source, side, [paths[i] for i in good],
                         [infos[i] for i in good])
        for batch, images in _decoded_batches(
            loader, _shape_order(source, loader, len(good)), batch_size
        ):
            outputs = score(images)
            values = (outputs[0] if draw else outputs).numpy()
            values = _normalised(values) if task.normalizes_outputs else values
            shapes_seen.add(images.shape[1:3])
            for k, p in zip(batch, values):
                totals[good[k]] += p
                done[good[k]] += 1
            if draw:
                maps = outputs[1].numpy()
                for j, k in enumerate(batch):
                    _draw(task, source, scores[good[k]], image=images[j],
                          score_map=maps[j],
                          mean=totals[good[k]] / done[good[k]],
                          folder=heatmaps, used=used_names)
            if progress is not None:
                progress.add(len(batch))
    return totals, done, shapes_seen


def _loader(source, side, paths, infos):
    """The training loaders' decoding at one scale: native size for an
    FCN, the fixed size of Keras' original model."""
    fixed = source.fixed_size
    return fcn_image_dataset.ImageLoader(
        "native" if fixed is None else "stretch",
        (side, side) if fixed is None else (fixed, fixed),
        "rgb",
        "bilinear",
        STRIDE,
        paths,
        infos,
    )


def _shape_order(source, loader, count):
    """The images in order of their input shape (batches of one shape)."""
    shapes = (
        loader.records["native_size"]
        if source.fixed_size is None
        else np.tile([source.fixed_size] * 2, (count, 1))
    )
    return sorted(range(count), key=lambda k: tuple(shapes[k]))


def _draw(task, source, row, *, image, score_map, mean, folder, used):
    """Writes one image's heatmap (`Task.heatmap_of`) and names it in `row`."""
    score_map, index, title = task.heatmap_of(
        score_map, mean, source.class_names
    )
    row.heatmap = os.path.join(folder, heatmap_name(row.path, used))
    save_heatmap(
        row.heatmap,
        image=image,
        score_map=score_map,
        class_index=index,
        title=title,
    )


def _decoded_batches(loader, order, batch_size):
    """`(batch indices, float32 images)` in `order`, decoded in parallel.

    A file that fails to decode (it passed the file check) is dropped; its
    index never comes back, and the caller reports it.
    """
    import tensorflow as tf

    records = {k: v[order] for k, v in loader.records.items()}
    records["index"] = np.asarray(order, dtype="int64")
    dataset = (
        tf.data.Dataset.from_tensor_slices(records)
        .map(
            lambda r: (r["index"], loader.load(r)),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        .ignore_errors()
        .prefetch(tf.data.AUTOTUNE)
    )
    batch, images = [], []
    for index, image in dataset.as_numpy_iterator():
        if batch and (
            len(batch) == batch_size or image.shape != images[0].shape
        ):
            yield batch, np.stack(images)
            batch, images = [], []
        batch.append(int(index))
        images.append(image)
    if batch:
        yield batch, np.stack(images)
