"""Opening and checking image files for the FCN loaders.

One place decides what a usable image file is, for the `load_img` modes
(`fcn_image_loading`) and for the tf.data pipelines (`fcn_image_dataset`):

- the file must decode completely (zero-byte, truncated, corrupt PNG and
  non-image files are refused; JPEG has no checksum, so bytes flipped inside
  a JPEG stream cannot be detected by anyone);
- more than `PIL.Image.MAX_IMAGE_PIXELS` pixels is refused as a possible
  decompression bomb (set that limit to change it, as for PIL itself);
- the EXIF orientation is applied, so photos are shown upright;
- 16-bit images are scaled to 8 bits (PIL's `convert` would clip them white);
- grayscale, palette, RGBA and CMYK images are converted to `color_mode`.
"""

import io
import pathlib

import numpy as np

try:
    from PIL import ExifTags
    from PIL import Image as pil_image
    from PIL import ImageOps
except ImportError:
    pil_image = None

from keras.src.utils import fcn_image_info

COLOR_MODES = {"grayscale": "L", "rgb": "RGB", "rgba": "RGBA"}
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
# Defined in `fcn_image_info`, shared with the header checker.
TRANSPOSING_ORIENTATIONS = fcn_image_info.TRANSPOSING_ORIENTATIONS
ImageInfo = fcn_image_info.ImageInfo


class BadImageError(ValueError):
    """An image file that cannot be used: unreadable, corrupt or too large."""


def _require_pil():
    if pil_image is None:
        raise ImportError(
            "Could not import PIL.Image. The FCN image loaders require PIL: "
            "pip install pillow"
        )


def _read_bytes(path):
    """Reads `path` the way `keras.utils.load_img` accepts it."""
    if isinstance(path, io.BytesIO):
        return path.getvalue(), "<BytesIO>"
    if isinstance(path, (pathlib.Path, bytes, str)):
        if isinstance(path, pathlib.Path):
            path = str(path.resolve())
        name = path.decode() if isinstance(path, bytes) else path
        with open(path, "rb") as f:
            return f.read(), name
    raise TypeError(
        f"path should be path-like or io.BytesIO, not {type(path)}"
    )


def check_pixel_count(size, name):
    """Refuses images over `PIL.Image.MAX_IMAGE_PIXELS` pixels."""
    limit = pil_image.MAX_IMAGE_PIXELS
    if limit is not None and size[0] * size[1] > limit:
        raise BadImageError(
            f"{name} is {size[0]}x{size[1]} pixels, more than "
            f"PIL.Image.MAX_IMAGE_PIXELS={limit}: refused as a possible "
            "decompression bomb. Shrink the image, or raise that limit if "
            "you trust the file."
        )


def orientation_of(img):
    """The EXIF orientation of an open image: 1 (upright) to 8."""
    orientation = img.getexif().get(ExifTags.Base.Orientation, 1)
    return orientation if orientation in range(1, 9) else 1


def to_8_bit(img):
    """Scales a 16-bit grayscale image to 8 bits; other images pass."""
    if img.mode in SIXTEEN_BIT_MODES or (img.mode == "I" and img.format == "PNG"):
        # PNG stores at most 16 bits; PIL opens some 16-bit PNGs as "I".
        array = np.asarray(img).astype(np.uint32) >> 8
        return pil_image.fromarray(array.astype(np.uint8), "L")
    return img


def convert_color_mode(img, color_mode):
    """Converts an 8-bit PIL image to `color_mode`, as Keras' loader does."""
    target = COLOR_MODES[color_mode]
    if img.mode == target:
        return img
    if img.mode == "P" and "transparency" in img.info:
        # Palette transparency goes through RGBA; PIL warns otherwise.
        img = img.convert("RGBA")
    return img.convert(target)


def open_image(path, color_mode="rgb"):
    """Opens an image file with PIL, upright, 8-bit and in `color_mode`.

    Args:
        path: Path to the image file (str, bytes, `pathlib.Path`), or an
            `io.BytesIO`, as for `keras.utils.load_img`.
        color_mode: One of `"grayscale"`, `"rgb"`, `"rgba"`.

    Returns:
        A loaded PIL image.

    Raises:
        BadImageError: the file is not a readable image, or is too large.
    """
    _require_pil()
    if color_mode not in COLOR_MODES:
        raise ValueError(
            'color_mode must be "grayscale", "rgb", or "rgba". '
            f"Received: color_mode={color_mode}"
        )
    data, name = _read_bytes(path)
    try:
        img = pil_image.open(io.BytesIO(data))
        check_pixel_count(img.size, name)
        ImageOps.exif_transpose(img, in_place=True)
        img = to_8_bit(img)
        return convert_color_mode(img, color_mode)
    except Exception as e:
        raise _bad_image(name, e) from e


def inspect_image_file(path):
    """Checks that a file is a complete image, and reads its size.

    A well-formed JPEG or PNG is checked from its structure, without
    decoding (`fcn_image_headers.read_image_header`: same verdict as PIL's,
    about 1/10 of the cost); any other file goes to
    `inspect_image_file_with_pil`.

    Args:
        path: Path to the image file.

    Returns:
        An `ImageInfo`.

    Raises:
        BadImageError: the file is empty, truncated, corrupt, not an image,
            or over `PIL.Image.MAX_IMAGE_PIXELS` pixels.
    """
    _require_pil()
    # Imported here: it needs PIL, which `_require_pil` asks for by name.
    from keras.src.utils import fcn_image_headers

    try:
        info = fcn_image_headers.read_image_header(path)
    except OSError:
        info = None  # PIL says what is wrong.
    return info if info is not None else inspect_image_file_with_pil(path)


def inspect_image_file_with_pil(path):
    """`inspect_image_file` by opening the file with PIL.

    Cheap enough to run on every file of a dataset before training: a JPEG
    is decoded at 1/8 scale (which still reads its whole entropy-coded
    stream, so truncation is caught), a PNG has the checksums of all its
    chunks verified (so is any corrupt or missing byte), GIF and BMP files
    are decoded. Arguments, result and errors as for `inspect_image_file`.
    """
    _require_pil()
    try:
        with pil_image.open(path) as img:
            check_pixel_count(img.size, path)
            width, height = img.size
            if img.format == "PNG":
                # Reading a PNG's EXIF anywhere but before the image data
                # means decoding it; writers put it before.
                orientation = orientation_of(img) if "exif" in img.info else 1
                img.verify()
            else:
                orientation = orientation_of(img)
                if img.format == "JPEG":
                    img.draft(None, (max(1, width // 8), max(1, height // 8)))
                img.load()
            return ImageInfo(width, height, orientation, img.format, img.mode)
    except Exception as e:
        raise _bad_image(path, e) from e


def _bad_image(name, error):
    """The `BadImageError` for any failure to read `name`."""
    if isinstance(error, BadImageError):
        return error
    if isinstance(error, pil_image.DecompressionBombError):
        return BadImageError(
            f"{name} is refused as a possible decompression bomb: {error} "
            "Shrink the image, or raise PIL.Image.MAX_IMAGE_PIXELS if you "
            "trust the file."
        )
    # Corrupt files make PIL raise almost anything (OSError, SyntaxError,
    # struct.error, ...): every failure means the same thing here.
    return BadImageError(
        f"{name} is not a readable image ({type(error).__name__}: {error}). "
        "Replace or remove the file."
    )
