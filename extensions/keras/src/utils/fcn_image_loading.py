"""The original FCN distribution's `load_img` modes, with its bugs fixed.

`set_load_img_type(n)` selects what `keras.utils.load_img` (and
`keras.preprocessing.image.load_img`) does:

| n | mode        | result for `target_size=(S, S)`                         |
|---|-------------|---------------------------------------------------------|
| 0 | `keras`     | Keras' own `load_img`; `None` in `target_size` keeps    |
|   |             | the aspect (the original's `load_img_keras`)            |
| 1 | `pad`       | longer side resized to S, centred on a black S x S      |
| 2 | `pad+mask`  | as 1, plus an S x S mask of the valid pixels (255)      |
| 3 | `crop`      | shorter side resized to S, central S x S                |
| 4 | `multicrop` | shorter side resized to S, three S x S crops: start,    |
|   |             | centre and end along the longer side                    |

A non-square `target_size=(H, W)` works the same way with "S x S" read as
"H x W". In modes 1 to 4, `target_size=None` or a size containing `None`
means `(min_dimension, min_dimension)`, as in the original.

While a mode other than 0 is set, the legacy
`ImageDataGenerator.flow_from_directory` (and `flow_from_dataframe`) loads
images in that mode: it looks `image_utils.load_img` up at batch time, so
that module attribute points to the mode dispatcher; modes 2 and 4 also
replace the generator's batch builder, because their samples are not one
image: mode 2 yields inputs `(images, masks)` (masks `(batch, H, W, 1)`,
1 on the image and 0 on the padding), mode 4 images of shape
`(batch, 3, H, W, channels)`; the random transform of an
`ImageDataGenerator` is drawn once per image and applied to its three crops
(and, its geometric part, to its mask). `set_load_img_type(0)` puts Keras' own
functions back, so mode 0 leaves Keras exactly as shipped (the generator
then needs a `target_size` without `None`: its batches have one shape).

Fixed from the original: the mode switch works (its `global` was missing);
multicrop batches instead of crashing; crop offsets are whole pixels and
the shorter side is exactly S; pad keeps the image's color mode; EXIF
orientation is applied and 16-bit images are scaled (see `fcn_image_files`).
"""

import os
import warnings

import numpy as np

from keras.src import backend
from keras.src.legacy.preprocessing import image as legacy_image
from keras.src.utils import fcn_image_files
from keras.src.utils import image_utils

LOAD_IMG_TYPES = ("keras", "pad", "pad+mask", "crop", "multicrop")
MULTICROP_POSITIONS = ("start", "centre", "end")

_load_img_type = 0


def _keras_original(obj):
    """Keras' own function, even if this module is imported again."""
    return getattr(obj, "_fcn_replaces", obj)


_KERAS_LOAD_IMG = _keras_original(image_utils.load_img)
_KERAS_BATCHES = _keras_original(
    legacy_image.BatchFromFilesMixin._get_batches_of_transformed_samples
)


def set_load_img_type(load_img_type):
    """Selects the mode of `load_img`: 0 keras, 1 pad, 2 pad + mask, 3 crop,
    4 multicrop (see the module docstring).

    Args:
        load_img_type: Integer from 0 to 4.
    """
    global _load_img_type
    if (
        isinstance(load_img_type, bool)
        or not isinstance(load_img_type, (int, np.integer))
        or not 0 <= load_img_type < len(LOAD_IMG_TYPES)
    ):
        modes = ", ".join(f"{i} = {name}" for i, name in enumerate(LOAD_IMG_TYPES))
        raise ValueError(
            f"`load_img_type` must be an integer: {modes}. "
            f"Received: load_img_type={load_img_type!r}"
        )
    _load_img_type = int(load_img_type)
    _hook_legacy_generator(_load_img_type)
    if _load_img_type and backend.backend() != "tensorflow":
        warnings.warn(
            "set_load_img_type: the legacy ImageDataGenerator.flow_from_"
            "directory hook is TensorFlow-only (tf.keras); on this backend "
            "only load_img switches modes: feed `fit` with "
            "keras.utils.fcn_image_dataset_from_directory(..., resize_mode=...)"
            f" instead. Received: load_img_type={_load_img_type}, "
            f"KERAS_BACKEND={backend.backend()}",
            stacklevel=2,
        )


def get_load_img_type():
    """Returns the mode of `load_img` set by `set_load_img_type` (0 to 4)."""
    return _load_img_type


def load_img(
    path,
    color_mode="rgb",
    target_size=None,
    interpolation="nearest",
    keep_aspect_ratio=False,
    min_dimension=224,
):
    """Loads an image in the mode chosen with `set_load_img_type`.

    Mode 0 is the original distribution's `load_img_keras`: for every
    `target_size` Keras accepts it is `keras.utils.load_img` itself (same
    results, same errors), and it also accepts `None` in `target_size`
    (see `load_img_keras`). In modes 1 to 4 the arguments are those of
    `load_img_pad`, `load_img_crop` and `load_img_multicrop`; mode 1 returns
    the padded image, mode 2 `(image, mask)`, mode 3 the crop and mode 4
    a list of three crops.
    """
    args = (path, color_mode, target_size, interpolation, keep_aspect_ratio,
            min_dimension)
    if _load_img_type == 0:
        return load_img_keras(*args)
    if _load_img_type == 1:
        return load_img_pad(*args)[0]
    if _load_img_type == 2:
        return load_img_pad(*args)
    if _load_img_type == 3:
        return load_img_crop(*args)
    return load_img_multicrop(*args)


load_img._fcn_replaces = _KERAS_LOAD_IMG


def load_img_keras(
    path,
    color_mode="rgb",
    target_size=None,
    interpolation="nearest",
    keep_aspect_ratio=False,
    min_dimension=224,
):
    """Keras' `load_img`, plus the original's aspect-keeping target sizes.

    A `target_size` without `None` (or `None` itself) goes to
    `keras.utils.load_img` unchanged: same result, same errors (and, like
    Keras, no EXIF rotation). A `None` inside `target_size` means "keep the
    aspect ratio", as in the original distribution's `load_img_keras`:
    - `(H, None)`: height H, width `round(W0 * H / H0)`;
    - `(None, W)`: width W, height `round(H0 * W / W0)`;
    - then, if the shorter side is below `min_dimension`, both sides are
      scaled up (rounded) until the shorter one equals it;
    - `(None, None)`: the image at its own size.
    `keep_aspect_ratio` is then moot (nothing is cropped). The legacy
    `ImageDataGenerator.flow_from_directory` calls `load_img` without
    `min_dimension`, so there the default, 224, applies; and since its
    batches have one shape, it needs a `target_size` without `None`.

    Args:
        path: Path to the image file, or an `io.BytesIO`.
        color_mode: One of `"grayscale"`, `"rgb"`, `"rgba"`.
        target_size: `None`, `(height, width)`, or either side `None`.
        interpolation: PIL resampling method, as for `keras.utils.load_img`.
        keep_aspect_ratio: As for `keras.utils.load_img` (crop to the
            target's aspect) when `target_size` holds no `None`.
        min_dimension: Smallest shorter side for a `target_size` with
            `None` in it.

    Returns:
        A PIL image.
    """
    if not _holds_none(target_size):
        return _KERAS_LOAD_IMG(
            path,
            color_mode=color_mode,
            target_size=target_size,
            interpolation=interpolation,
            keep_aspect_ratio=keep_aspect_ratio,
        )
    target_size = tuple(target_size)
    if len(target_size) != 2 or not all(
        s is None or (isinstance(s, (int, np.integer)) and not isinstance(s, bool)
                      and s > 0)
        for s in target_size
    ):
        raise ValueError(
            "`target_size` must be `(height, width)` with positive integers or "
            f"None. Received: target_size={target_size}"
        )
    resample = _resample(interpolation)
    _check_min_dimension(min_dimension)
    img = _KERAS_LOAD_IMG(path, color_mode=color_mode)
    target_height, target_width = target_size
    if target_height is None and target_width is None:
        return img
    width, height = img.size
    # The original's arithmetic, float ratio then round, for the same sizes.
    if target_height is None:
        size = (int(target_width), round(height * (float(target_width) / float(width))))
    else:
        size = (round(width * (float(target_height) / float(height))), int(target_height))
    if min(size) < min_dimension:
        scale = float(min_dimension) / float(min(size))
        size = (round(float(size[0]) * scale), round(float(size[1]) * scale))
    return img.resize(size, resample)


def _holds_none(target_size):
    """Whether `target_size` is a sequence with `None` in it (anything else
    goes to Keras, which gives its own errors)."""
    try:
        return any(s is None for s in target_size)
    except TypeError:
        return False


def load_img_crop(
    path,
    color_mode="rgb",
    target_size=None,
    interpolation="nearest",
    keep_aspect_ratio=False,
    min_dimension=224,
):
    """Loads the central crop of an image with the aspect of `target_size`.

    The shorter side (relative to the target's aspect) is resized to the
    target, the rest is cropped symmetrically: for a file without EXIF
    rotation this equals `keras.utils.load_img(..., keep_aspect_ratio=True)`.

    Args:
        path: Path to the image file, or an `io.BytesIO`.
        color_mode: One of `"grayscale"`, `"rgb"`, `"rgba"`.
        target_size: `(height, width)`; `None`, or a size containing `None`,
            means `(min_dimension, min_dimension)`.
        interpolation: PIL resampling method, as for `keras.utils.load_img`.
        keep_aspect_ratio: Accepted for the `load_img` call signature; the
            aspect ratio is always kept.
        min_dimension: Target side when `target_size` does not give one.

    Returns:
        A PIL image of size `target_size`.
    """
    img, size, resample = _open(path, color_mode, target_size, interpolation,
                                min_dimension)
    return img.resize((size[1], size[0]), resample, box=crop_box(img.size, size))


def load_img_multicrop(
    path,
    color_mode="rgb",
    target_size=None,
    interpolation="nearest",
    keep_aspect_ratio=False,
    min_dimension=224,
):
    """Loads three crops with the aspect of `target_size`: start, centre, end.

    The image is resized to cover the target (`cover_size`), then cut at the
    start, centre and end of its longer side (relative to the target's
    aspect); the crops cover the whole image up to an aspect ratio of 3:1.
    Arguments as for `load_img_crop`.

    Returns:
        A list of three PIL images of size `target_size`; stack them with
        `np.stack([keras.utils.img_to_array(c) for c in crops])`.
    """
    img, size, resample = _open(path, color_mode, target_size, interpolation,
                                min_dimension)
    height, width = cover_size(img.size, size)
    img = img.resize((width, height), resample)
    top, left = height - size[0], width - size[1]
    return [img.crop((x, y, x + size[1], y + size[0]))
            for y, x in [(0, 0), (top // 2, left // 2), (top, left)]]


def load_img_pad(
    path,
    color_mode="rgb",
    target_size=None,
    interpolation="nearest",
    keep_aspect_ratio=False,
    min_dimension=224,
):
    """Loads an image fitted into `target_size` and padded with black.

    The longer side (relative to the target's aspect) is resized to the
    target, the image keeps its aspect ratio and is pasted centred on a
    black canvas (transparent black for `"rgba"`). Arguments as for
    `load_img_crop`.

    Returns:
        `(image, mask)`: two PIL images of size `target_size`; the mask
        (mode `"L"`) is 255 where the image is and 0 in the padding.
    """
    img, size, resample = _open(path, color_mode, target_size, interpolation,
                                min_dimension)
    (top, left), (height, width) = pad_placement(img.size, size)
    canvas = fcn_image_files.pil_image.new(img.mode, (size[1], size[0]))
    canvas.paste(img.resize((width, height), resample), (left, top))
    mask = fcn_image_files.pil_image.new("L", (size[1], size[0]))
    mask.paste(255, (left, top, left + width, top + height))
    return canvas, mask


def crop_box(image_size, target_size):
    """The central crop box `(left, top, right, bottom)` of `load_img_crop`:
    the largest with the target's aspect ratio, computed as in
    `keras.utils.load_img(keep_aspect_ratio=True)`.

    Args:
        image_size: `(width, height)` of the image, as PIL gives it.
        target_size: `(height, width)` of the result.
    """
    width, height = image_size
    target_height, target_width = target_size
    crop_height = max(1, min(height, (width * target_height) // target_width))
    crop_width = max(1, min(width, (height * target_width) // target_height))
    top = (height - crop_height) // 2
    left = (width - crop_width) // 2
    return (left, top, left + crop_width, top + crop_height)


def cover_size(image_size, target_size):
    """`(height, width)` that covers the target at the image's aspect ratio:
    the shorter side (relative to the target's aspect) equals the target,
    the other is rounded half up.

    Args:
        image_size: `(width, height)` of the image, as PIL gives it.
        target_size: `(height, width)` of the result.
    """
    width, height = image_size
    target_height, target_width = target_size
    if width * target_height >= height * target_width:
        cover_width = (2 * width * target_height + height) // (2 * height)
        return target_height, max(target_width, cover_width)
    cover_height = (2 * height * target_width + width) // (2 * width)
    return max(target_height, cover_height), target_width


def pad_placement(image_size, target_size):
    """Where a padded image goes: `((top, left), (height, width))`.

    The placement of TF's `resize_with_pad` (Keras' `pad_to_aspect_ratio`):
    the longer side (relative to the target's aspect) fills the target, the
    other is floored, and the offset centres the unfloored size. In exact
    integer arithmetic: TF's float32 can make the longer side one pixel
    short, leaving a black strip.

    Args:
        image_size: `(width, height)` of the image, as PIL gives it.
        target_size: `(height, width)` of the result.
    """
    width, height = image_size
    target_height, target_width = target_size
    if width * target_height >= height * target_width:
        new_height = max(1, height * target_width // width)
        top = (target_height * width - height * target_width) // (2 * width)
        return (top, 0), (new_height, target_width)
    new_width = max(1, width * target_height // height)
    left = (target_width * height - width * target_height) // (2 * height)
    return (0, left), (target_height, new_width)


def _open(path, color_mode, target_size, interpolation, min_dimension):
    """Shared start of the crop, pad and multicrop loaders."""
    resample = _resample(interpolation)
    if target_size is None or None in tuple(target_size):
        _check_min_dimension(min_dimension)
        target_size = (min_dimension, min_dimension)
    target_size = tuple(target_size)
    if len(target_size) != 2 or not all(
        isinstance(s, (int, np.integer)) and s > 0 for s in target_size
    ):
        raise ValueError(
            "`target_size` must be `(height, width)` with positive integers, "
            f"or None. Received: target_size={target_size}"
        )
    return fcn_image_files.open_image(path, color_mode), target_size, resample


def _resample(interpolation):
    if interpolation not in image_utils.PIL_INTERPOLATION_METHODS:
        raise ValueError(
            "Invalid interpolation method {} specified. Supported "
            "methods are {}".format(
                interpolation,
                ", ".join(image_utils.PIL_INTERPOLATION_METHODS.keys()),
            )
        )
    return image_utils.PIL_INTERPOLATION_METHODS[interpolation]


def _check_min_dimension(min_dimension):
    if not isinstance(min_dimension, (int, np.integer)) or min_dimension < 1:
        raise ValueError(
            "`min_dimension` must be a positive integer. "
            f"Received: min_dimension={min_dimension!r}"
        )


# ------------------------------------------------- legacy generator hook


def _hook_legacy_generator(load_img_type):
    """Points the legacy generator at mode `load_img_type`, or back at Keras."""
    image_utils.load_img = load_img if load_img_type else _KERAS_LOAD_IMG
    legacy_image.BatchFromFilesMixin._get_batches_of_transformed_samples = (
        _get_batches_of_crops_or_masks
        if LOAD_IMG_TYPES[load_img_type] in ("pad+mask", "multicrop")
        else _KERAS_BATCHES
    )


def _get_batches_of_crops_or_masks(self, index_array):
    """`BatchFromFilesMixin._get_batches_of_transformed_samples` for modes
    2 and 4, whose samples are an image and a mask, or three crops.

    Each image gets one random transform: the three crops of an image share
    it, and a mask gets its geometric part (no channel or brightness shift)
    and stays 0 or 1.
    """
    multicrop = _load_img_type == LOAD_IMG_TYPES.index("multicrop")
    count = len(MULTICROP_POSITIONS) if multicrop else 1
    batch_x = np.zeros((len(index_array), count) + self.image_shape, dtype=self.dtype)
    channel_axis = -1 if self.data_format == "channels_last" else 0
    mask_shape = list(self.image_shape)
    mask_shape[channel_axis] = 1
    batch_mask = np.zeros((len(index_array), *mask_shape), dtype=self.dtype)
    generator = self.image_data_generator
    filepaths = self.filepaths
    for i, j in enumerate(index_array):
        loaded = load_img(
            filepaths[j],
            color_mode=self.color_mode,
            target_size=self.target_size,
            interpolation=self.interpolation,
            keep_aspect_ratio=self.keep_aspect_ratio,
        )
        crops = loaded if multicrop else loaded[:1]
        arrays = [image_utils.img_to_array(c, data_format=self.data_format)
                  for c in crops]
        params = generator.get_random_transform(arrays[0].shape) if generator else None
        for k, x in enumerate(arrays):
            if generator:
                x = generator.standardize(generator.apply_transform(x, params))
            batch_x[i, k] = x
        if not multicrop:
            mask = image_utils.img_to_array(loaded[1], data_format=self.data_format)
            if generator:
                geometric = dict(params, channel_shift_intensity=None, brightness=None)
                mask = generator.apply_transform(mask, geometric)
            batch_mask[i] = mask > 127.5
    images = batch_x if multicrop else batch_x[:, 0]
    if self.save_to_dir:
        for i, j in enumerate(index_array):
            for k, x in enumerate(batch_x[i]):
                img = image_utils.array_to_img(x, self.data_format, scale=True)
                fname = "{prefix}_{index}_{crop}_{hash}.{format}".format(
                    prefix=self.save_prefix,
                    index=j,
                    crop=k,
                    hash=np.random.randint(1e7),
                    format=self.save_format,
                )
                img.save(os.path.join(self.save_to_dir, fname))
    inputs = images if multicrop else (images, batch_mask)
    return _with_labels(self, index_array, inputs, images)


_get_batches_of_crops_or_masks._fcn_replaces = _KERAS_BATCHES


def _with_labels(self, index_array, inputs, images):
    """The label part of Keras' batch builder (keras/src/legacy/
    preprocessing/image.py, `BatchFromFilesMixin`), loops included: a
    `DataFrameIterator`'s classes are a list, of lists for multi-label."""
    if self.class_mode == "input":
        batch_y = images.copy()
    elif self.class_mode in {"binary", "sparse"}:
        batch_y = np.empty(len(index_array), dtype=self.dtype)
        for i, n_observation in enumerate(index_array):
            batch_y[i] = self.classes[n_observation]
    elif self.class_mode == "categorical":
        batch_y = np.zeros(
            (len(index_array), len(self.class_indices)), dtype=self.dtype
        )
        for i, n_observation in enumerate(index_array):
            batch_y[i, self.classes[n_observation]] = 1.0
    elif self.class_mode == "multi_output":
        batch_y = [output[index_array] for output in self.labels]
    elif self.class_mode == "raw":
        batch_y = self.labels[index_array]
    else:
        return inputs
    if self.sample_weight is None:
        return inputs, batch_y
    return inputs, batch_y, self.sample_weight[index_array]
