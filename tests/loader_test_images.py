"""Real photos (scikit-image's bundled ones and test_image.jpg) and bad image
files written with PIL, for the tests of the FCN image loaders."""

import os

import numpy as np
import skimage.data
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIMAGE_DATA = os.path.dirname(skimage.data.__file__)
EXIF_ORIENTATION = 0x0112

# (file, size to save at): landscape, portrait, square, wide, small.
PHOTOS = {
    "rocket": ("test_image.jpg", (150, 100)),
    "coffee": ("coffee.png", (120, 80)),
    "chelsea_portrait": ("chelsea.png", (70, 105)),
    "astronaut": ("astronaut.png", (96, 96)),
    "motorcycle_wide": ("motorcycle_left.png", (180, 60)),
    "hubble_small": ("hubble_deep_field.jpg", (40, 30)),
}


def photo(name, size=None):
    """A real photo as an RGB PIL image, at `size` (w, h) or its PHOTOS size."""
    file, default_size = PHOTOS[name]
    path = os.path.join(ROOT, file) if file == "test_image.jpg" else os.path.join(
        SKIMAGE_DATA, file)
    img = Image.open(path).convert("RGB")
    return img.resize(size or default_size, Image.BICUBIC)


def write_photos(directory, names=None, fmt="jpg", classes=("a", "b")):
    """Writes the photos round-robin into class folders; returns the paths."""
    paths = []
    for i, name in enumerate(names or list(PHOTOS)):
        folder = os.path.join(directory, classes[i % len(classes)])
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"{name}.{fmt}")
        photo(name).save(path, quality=95) if fmt == "jpg" else photo(name).save(path)
        paths.append(path)
    return paths


def write_damaged_jpeg(path, size=None):
    """A real photo's JPEG with an invalid marker inside its entropy-coded
    data: header and EOI intact, fatal for libjpeg ("Unsupported marker")."""
    photo("astronaut", size).save(path, quality=90)
    data = bytearray(open(path, "rb").read())
    scan = data.index(b"\xff\xda")
    middle = scan + (len(data) - scan) // 2
    data[middle: middle + 2] = b"\xff\x50"
    with open(path, "wb") as f:
        f.write(bytes(data))


# EXIF orientation -> the PIL transpose that turns the upright image into the
# stored one (the inverse of what a viewer applies).
STORE_TRANSPOSE = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def save_with_orientation(upright, path, orientation, **kwargs):
    """Saves `upright` rotated/flipped so that a viewer honouring the EXIF
    `orientation` shows it upright again."""
    method = STORE_TRANSPOSE[orientation]
    stored = upright.transpose(method) if method is not None else upright
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    stored.save(path, exif=exif.tobytes(), **kwargs)


def write_bad_files(directory):
    """Bad files, one of each kind; returns {file name: path}."""
    os.makedirs(directory, exist_ok=True)
    good = photo("rocket")
    files = {}

    def path(name):
        files[name] = os.path.join(directory, name)
        return files[name]

    open(path("zero_byte.jpg"), "wb").close()
    good.save(os.path.join(directory, "full.jpg"), quality=95)
    data = open(os.path.join(directory, "full.jpg"), "rb").read()
    os.remove(os.path.join(directory, "full.jpg"))
    with open(path("truncated.jpg"), "wb") as f:
        f.write(data[: len(data) // 2])
    good.save(os.path.join(directory, "full.png"))
    data = open(os.path.join(directory, "full.png"), "rb").read()
    os.remove(os.path.join(directory, "full.png"))
    with open(path("truncated.png"), "wb") as f:
        f.write(data[: len(data) // 2])
    corrupt = bytearray(data)
    idat = corrupt.index(b"IDAT")
    corrupt[idat + 40: idat + 60] = bytes(20)  # zeros in the compressed data
    with open(path("corrupt.png"), "wb") as f:
        f.write(bytes(corrupt))
    with open(path("html_page.jpg"), "w") as f:
        f.write("<html><body>404 Not Found</body></html>")
    # 10000 x 10000 = 1e8 pixels > PIL.Image.MAX_IMAGE_PIXELS (89478485); a
    # 1-bit image, so it costs 12.5 MB to write and a few kB on disk.
    Image.new("1", (10000, 10000)).save(path("bomb.png"))
    return files


def write_convertible_files(directory):
    """Unusual but valid images, one of each kind; returns {kind: (path,
    expected upright RGB uint8 array)}."""
    os.makedirs(directory, exist_ok=True)
    rgb = photo("coffee")
    files = {}
    gray = rgb.convert("L")
    gray.save(os.path.join(directory, "grayscale.png"))
    files["grayscale"] = np.stack([np.asarray(gray)] * 3, axis=-1)
    rgba = rgb.copy()
    rgba.putalpha(Image.linear_gradient("L").resize(rgb.size))
    rgba.save(os.path.join(directory, "rgba.png"))
    files["rgba"] = np.asarray(rgb)
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    palette.save(os.path.join(directory, "palette.png"), transparency=0)
    files["palette"] = np.asarray(palette.convert("RGBA").convert("RGB"))
    palette.save(os.path.join(directory, "palette.bmp"))
    files["palette_bmp"] = np.asarray(palette.convert("RGB"))
    cmyk = rgb.convert("CMYK")
    cmyk.save(os.path.join(directory, "cmyk.jpg"), quality=95)
    files["cmyk"] = np.asarray(Image.open(os.path.join(directory, "cmyk.jpg")).convert("RGB"))
    sixteen = (np.asarray(gray).astype(np.uint16) << 8) | 0x80
    Image.fromarray(sixteen).save(os.path.join(directory, "sixteen_bit.png"))
    files["sixteen_bit"] = np.stack([np.asarray(gray)] * 3, axis=-1)
    save_with_orientation(rgb, os.path.join(directory, "exif_rotated.png"), 6)
    files["exif_rotated"] = np.asarray(rgb)
    return {kind: (os.path.join(directory, name), files[kind]) for kind, name in [
        ("grayscale", "grayscale.png"), ("rgba", "rgba.png"), ("palette", "palette.png"),
        ("palette_bmp", "palette.bmp"), ("cmyk", "cmyk.jpg"),
        ("sixteen_bit", "sixteen_bit.png"), ("exif_rotated", "exif_rotated.png"),
    ]}
