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
"""

import csv
import dataclasses
import os
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from fcn_experiments.model_source import STRIDE
from fcn_experiments.model_source import ModelSourceError

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
HEATMAP_MIN_SIDE = 256


@dataclasses.dataclass
class ImageScore:
    """One row of the scores CSV."""

    path: str
    width: int | None = None
    height: int | None = None
    probabilities: np.ndarray | None = None
    error: str = ""
    heatmap: str = ""


def list_images(inputs):
    """The files to score: files as given, folders searched recursively.

    In folders, files with an image extension (`IMAGE_EXTENSIONS`) are taken,
    in sorted order; other files and dotfiles are left out (counted).

    Returns:
        `(paths, left_out)`: the paths in input order, and how many files in
        folders were left out.

    Raises:
        ModelSourceError: an input does not exist.
    """
    paths, left_out = [], 0
    for item in inputs:
        if os.path.isfile(item):
            paths.append(item)
            continue
        if not os.path.isdir(item):
            raise ModelSourceError(
                f"No such file or folder. Received: INPUT={item!r}"
            )
        for root, dirs, files in os.walk(item):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith("."):
                    paths.append(os.path.join(root, name))
                else:
                    left_out += 1
    return paths, left_out


def parse_scales(text):
    """`"1,1.5,2"` -> `(1.0, 1.5, 2.0)`."""
    try:
        scales = tuple(float(part) for part in text.replace(",", " ").split())
    except ValueError:
        scales = ()
    if not scales or any(not s > 0 for s in scales):
        raise ModelSourceError(
            "--scales takes positive numbers separated by commas, e.g. "
            f"1,1.5,2. Received: scales={text!r}"
        )
    return scales


def _inspect_all(paths):
    """`ImageInfo` or the `BadImageError` of each path (a thread pool)."""
    from keras.src.utils import fcn_image_files

    def inspect(path):
        try:
            return fcn_image_files.inspect_image_file(path)
        except fcn_image_files.BadImageError as error:
            return error

    with warnings.catch_warnings():
        # Refused with our own message instead.
        warnings.simplefilter(
            "ignore", fcn_image_files.pil_image.DecompressionBombWarning
        )
        with ThreadPoolExecutor(min(32, (os.cpu_count() or 1) + 4)) as pool:
            return list(pool.map(inspect, paths))


def scoring_function(model, preprocess, with_score_map=False):
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


def score_map_model(fcn):
    """The FCN with a second output: its per-position class probabilities.

    For `pooling="max"` heads that is the map the maximum is taken over;
    for `pooling="avg"` heads, the per-position logits (for GAP backbones
    the `predictions` 1x1 conv applied before the averaging) through the
    head's activation.
    """
    import keras

    names = {layer.name for layer in fcn.layers}
    if "max_pool" in names:
        score_map = fcn.get_layer("max_pool").input
    elif "avg_pool" in names:
        pool = fcn.get_layer("avg_pool")
        predictions = fcn.get_layer("predictions")
        x = pool.input
        if x.shape[-1] != predictions.filters:  # Features: a GAP backbone.
            x = predictions(x)
        if "score_activation" in names:
            x = fcn.get_layer("score_activation")(x)
        score_map = x
    else:
        raise ModelSourceError(
            f"{fcn.name} has no max_pool or avg_pool head layer: it is not "
            "an FCN from keras.applications.*_fcn, so it has no score map "
            "to draw. Score it without --heatmaps."
        )
    return keras.Model(fcn.inputs, [fcn.outputs[0], score_map])


def _normalized(scores):
    scores = np.asarray(scores, dtype="float64")
    return scores / np.maximum(scores.sum(axis=-1, keepdims=True), 1e-12)


def _batches(order, shapes, batch_size):
    """Splits `order` (indices sorted by shape) into same-shape batches."""
    batch = []
    for index in order:
        if batch and (
            len(batch) == batch_size
            or tuple(shapes[index]) != tuple(shapes[batch[0]])
        ):
            yield batch
            batch = []
        batch.append(index)
    if batch:
        yield batch


def _heatmap_name(path, used):
    stem = os.path.splitext(os.path.basename(path))[0]
    name, k = f"{stem}.png", 1
    while name in used:
        name, k = f"{stem}_{k}.png", k + 1
    used.add(name)
    return name


def _save_heatmap(path, image, score_map, class_index, title):
    from matplotlib.figure import Figure

    import keras

    rows, cols = image.shape[:2]
    # Small model inputs are drawn larger (the overlay interpolates).
    zoom = max(1.0, HEATMAP_MIN_SIDE / min(rows, cols))
    width, height = cols * zoom, rows * zoom
    figure = Figure(figsize=(width / 100, (height + 30) / 100), dpi=100)
    ax = figure.add_axes((0, 0, 1, height / (height + 30)))
    keras.visualization.overlay_score_map(
        image.astype("uint8"), score_map, int(class_index), ax=ax
    )
    figure.text(0.5, 1, title, ha="center", va="top", fontsize=8)
    figure.savefig(path)


def predict_images(
    source,
    paths,
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
        scales: aspect-preserving rescalings whose probabilities are
            averaged; the shorter side is `round(size * scale)`.
        batch_size: images per batch (of one shape).
        heatmaps: a folder for one PNG per image: the score map of its
            predicted class over it, at the first scale.
        verbose: 1 for a progress bar and a closing line with images/s.

    Returns:
        `(scores, stats)`: an `ImageScore` per path, in order, and a dict
        with `images_per_s`, `seconds`, `failed`, `shapes` (distinct input
        shapes) and `traces` (times TF traced the model).
    """
    import keras
    from keras.src.utils import fcn_image_dataset

    size = int(size or source.input_size)
    scales = tuple(float(s) for s in scales)
    sides = [int(round(size * s)) for s in scales]
    if min(sides) < source.min_size:
        raise ModelSourceError(
            f"{source.backbone} needs inputs of at least {source.min_size} px; "
            f"size {size} at scale {min(scales)} gives {min(sides)}. "
            f"Received: size={size}, scales={scales}"
        )
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ModelSourceError(
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
    began = time.perf_counter()
    scores = [ImageScore(path) for path in paths]
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
    # The heatmap scale runs last, when the final prediction is known.
    runs = list(zip(scales, sides))[1:] + list(zip(scales, sides))[:1]
    totals = np.zeros((len(paths), len(source.class_names)))
    done = np.zeros((len(paths),), dtype=int)
    progress = (
        keras.utils.Progbar(len(good) * len(scales), unit_name="image")
        if verbose and good
        else None
    )
    shapes_seen, used_names = set(), set()
    for run, (scale, side) in enumerate(runs if good else []):
        draw = heatmaps is not None and run == len(runs) - 1
        loader = fcn_image_dataset.ImageLoader(
            "native" if source.fixed_size is None else "stretch",
            (side, side) if source.fixed_size is None else (source.fixed_size,) * 2,
            "rgb",
            "bilinear",
            STRIDE,
            [paths[i] for i in good],
            [infos[i] for i in good],
        )
        shapes = (
            loader.records["native_size"]
            if source.fixed_size is None
            else np.tile([source.fixed_size] * 2, (len(good), 1))
        )
        order = sorted(range(len(good)), key=lambda k: tuple(shapes[k]))
        for batch, images in _decoded_batches(loader, order, shapes, batch_size):
            outputs = score(images)
            probabilities = outputs[0] if draw else outputs
            probabilities = _normalized(probabilities.numpy())
            shapes_seen.add(images.shape[1:3])
            for k, p in zip(batch, probabilities):
                totals[good[k]] += p
                done[good[k]] += 1
            if draw:
                maps = outputs[1].numpy()
                for j, k in enumerate(batch):
                    row = scores[good[k]]
                    mean = totals[good[k]] / done[good[k]]
                    predicted = int(np.argmax(mean))
                    name = _heatmap_name(row.path, used_names)
                    row.heatmap = os.path.join(heatmaps, name)
                    _save_heatmap(
                        row.heatmap,
                        images[j],
                        maps[j],
                        predicted,
                        f"{source.class_names[predicted]} {mean[predicted]:.2f}",
                    )
            if progress is not None:
                progress.add(len(batch))
    for i in good:
        if done[i] == len(scales):
            scores[i].probabilities = totals[i] / len(scales)
        else:
            scores[i].error = (
                f"{paths[i]} passed the file check but failed to decode. "
                "Replace or remove the file."
            )
            scores[i].heatmap = ""
    seconds = time.perf_counter() - began
    scored = sum(row.probabilities is not None for row in scores)
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


def _decoded_batches(loader, order, shapes, batch_size):
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


def csv_header(class_names, heatmaps=False):
    header = ["path", "width", "height", "predicted_class"]
    header += [f"p_{name}" for name in class_names]
    header += ["scales", "error"]
    return header + (["heatmap"] if heatmaps else [])


def write_scores_csv(path, scores, class_names, scales, heatmaps=False):
    """The scores CSV: one row per image, in input order."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    scales_text = " ".join(f"{s:g}" for s in scales)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(csv_header(class_names, heatmaps))
        for row in scores:
            if row.probabilities is None:
                cells = [row.path, row.width or "", row.height or "", ""]
                cells += [""] * len(class_names) + ["", row.error]
            else:
                cells = [
                    row.path,
                    row.width,
                    row.height,
                    class_names[int(np.argmax(row.probabilities))],
                ]
                cells += [f"{p:.6f}" for p in row.probabilities]
                cells += [scales_text, ""]
            writer.writerow(cells + ([row.heatmap] if heatmaps else []))


EXAMPLES_DIR = "predict_examples"


def score_test_examples(output_dir, count=4, rows=None, verbose=0):
    """Scores `count` test images with the run's best FCN on validation.

    The images are spread evenly over the sorted test set (so over its
    classes); their heatmaps go to `<output_dir>/predict_examples/`.

    Args:
        output_dir: a run's output folder.
        count: how many test images.
        rows: the run's result rows (default: its results.csv).

    Returns:
        `(source, scores)`: the `ModelSource` and an `ImageScore` per image.
    """
    from fcn_experiments.datasets import resolve_folders
    from fcn_experiments.experiments import get_experiment
    from fcn_experiments.model_source import config_of_folder
    from fcn_experiments.model_source import resolve_model_source
    from fcn_experiments.plots import _best_fcn_row
    from fcn_experiments.results import read_results

    row = _best_fcn_row(rows if rows is not None else read_results(output_dir))
    if row is None:
        raise ModelSourceError(
            f"{output_dir} holds no finished FCN experiment (#2-#9) to score "
            "with. Run one first."
        )
    folder = os.path.join(output_dir, get_experiment(row["experiment"]).folder)
    config = dataclasses.replace(config_of_folder(folder), output_dir=output_dir)
    paths, _ = list_images([resolve_folders(config).test])
    picks = np.unique(np.linspace(0, len(paths) - 1, count).round().astype(int))
    source = resolve_model_source(folder)
    scores, _ = predict_images(
        source,
        [paths[i] for i in picks],
        heatmaps=os.path.join(output_dir, EXAMPLES_DIR),
        verbose=verbose,
    )
    return source, scores


def scores_markdown(scores, class_names):
    """A markdown table of `ImageScore`s: file, size, class, probabilities."""
    lines = [
        "| image | size | predicted | "
        + " | ".join(f"p({name})" for name in class_names)
        + " |",
        "|---" * (3 + len(class_names)) + "|",
    ]
    for row in scores:
        name = os.path.basename(row.path)
        if row.probabilities is None:
            cells = [name, "", f"error: {row.error}"] + [""] * len(class_names)
        else:
            cells = [
                name,
                f"{row.width}x{row.height}",
                class_names[int(np.argmax(row.probabilities))],
            ] + [f"{p:.3f}" for p in row.probabilities]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
