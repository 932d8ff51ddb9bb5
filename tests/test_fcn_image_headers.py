"""`fcn_image_headers.read_image_header` (the bad-file scan's check of a
JPEG or PNG from its structure) gives exactly PIL's verdict: on real photos
in every layout PIL writes, it returns the `ImageInfo` (size, EXIF
orientation, format, mode) that opening the file with PIL gives; on bad or
unusual files it returns None, and `inspect_image_file` then gives PIL's
verdict itself."""

import io
import os

import numpy as np
import pytest
from PIL import Image
from PIL import ImageCms
from PIL import PngImagePlugin

from keras.src.utils import fcn_image_files
from keras.src.utils import fcn_image_headers

from loader_test_images import EXIF_ORIENTATION
from loader_test_images import SKIMAGE_DATA
from loader_test_images import photo
from loader_test_images import save_with_orientation
from loader_test_images import write_bad_files
from loader_test_images import write_convertible_files


def _skimage(name):
    return Image.open(os.path.join(SKIMAGE_DATA, name))


def _write_decided(directory):
    """Good JPEGs and PNGs the structural check must decide: {name: path}."""
    os.makedirs(directory)
    files = {}

    def path(name):
        files[name] = os.path.join(directory, name)
        return files[name]

    rocket = photo("rocket")  # 150 x 100
    rocket.save(path("baseline.jpg"), quality=90)
    rocket.save(path("progressive.jpg"), quality=90, progressive=True)
    rocket.save(path("optimized.jpg"), quality=75, optimize=True)
    rocket.save(path("subsampling_444.jpg"), quality=95, subsampling=0)
    rocket.convert("L").save(path("grayscale.jpg"))
    rocket.convert("CMYK").save(path("cmyk.jpg"))  # Adobe APP14 segment
    for orientation in range(1, 9):
        save_with_orientation(rocket, path(f"exif_{orientation}.jpg"), orientation,
                              quality=90)
        save_with_orientation(rocket, path(f"exif_{orientation}.png"), orientation)
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 9  # Out of range: upright, as PIL reads it.
    rocket.save(path("exif_9.jpg"), exif=exif.tobytes())
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description '
           b'tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>')
    rocket.save(path("xmp_orientation.jpg"), xmp=xmp)
    exif[EXIF_ORIENTATION] = 3  # EXIF wins over XMP.
    rocket.save(path("exif_and_xmp.jpg"), exif=exif.tobytes(), xmp=xmp)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    rocket.save(path("icc.jpg"), icc_profile=srgb)
    # A profile over 64 kB spans several APP2 segments: the header does not
    # fit the first read.
    rocket.save(path("large_icc.jpg"), icc_profile=srgb + bytes(150_000))
    rocket.save(path("comment.jpg"), comment=b"a comment")
    # Whole photos: files over the first read (tail read apart).
    _skimage("astronaut.png").save(path("astronaut.jpg"), quality=98)
    _skimage("chelsea.png").save(path("chelsea.jpg"), quality=95)
    _skimage("coffee.png").save(path("coffee.png"))
    _skimage("astronaut.png").save(path("astronaut.png"))
    _skimage("camera.png").save(path("camera.png"))  # grayscale
    _skimage("rocket.jpg").save(path("rocket_copy.jpg"))
    # PNG modes.
    coffee = photo("coffee")
    coffee.save(path("rgb.png"))
    coffee.convert("L").save(path("l.png"))
    coffee.convert("LA").save(path("la.png"))
    rgba = coffee.copy()
    rgba.putalpha(Image.linear_gradient("L").resize(coffee.size))
    rgba.save(path("rgba.png"))
    palette = coffee.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    palette.save(path("palette_transparency.png"), transparency=0)
    palette.save(path("palette.png"))
    coffee.convert("1").save(path("one_bit.png"))
    coffee.save(path("rgb_transparency.png"), transparency=(0, 0, 0))
    sixteen = (np.asarray(coffee.convert("L")).astype(np.uint16) << 8) | 0x80
    Image.fromarray(sixteen).save(path("sixteen_bit.png"))
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "test")
    coffee.save(path("text.png"), pnginfo=info, dpi=(72, 72))
    return files


def _write_undecided(directory):
    """Files only PIL can judge (bad, other formats, unusual): {name: path}."""
    files = dict(write_bad_files(directory))

    def path(name):
        files[name] = os.path.join(directory, name)
        return files[name]

    rocket = photo("rocket")
    for fmt in ("gif", "bmp", "webp", "tiff"):
        rocket.save(path(f"photo.{fmt}"))
    rocket.save(path("webp_named.jpg"), format="WEBP")
    rocket.save(path("png_named.jpg"), format="PNG")  # decided, as PNG
    data = io.BytesIO()
    rocket.save(data, format="JPEG", quality=90)
    jpeg = data.getvalue()
    with open(path("no_eoi.jpg"), "wb") as f:
        f.write(jpeg[:-2])
    with open(path("trailing_bytes.jpg"), "wb") as f:
        f.write(jpeg + b"\0" * 100)
    with open(path("truncated_header.jpg"), "wb") as f:
        f.write(jpeg[:300])
    with open(path("soi_only.jpg"), "wb") as f:
        f.write(jpeg[:3])
    corrupt = bytearray(jpeg)
    corrupt[2:4] = b"\xff\xc0"  # a SOF where APP0 was: two SOFs
    with open(path("two_sofs.jpg"), "wb") as f:
        f.write(bytes(corrupt))
    coffee = photo("coffee")
    coffee.save(path("apng.png"), save_all=True,
                append_images=[coffee.rotate(90)])
    info = PngImagePlugin.PngInfo()
    info.add_itxt("Comment", "compressed", zip=True)
    coffee.save(path("itxt.png"), pnginfo=info)
    png = open(files["truncated.png"], "rb").read()
    with open(path("png_header_only.png"), "wb") as f:
        f.write(png[:33])
    return files


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("headers"))
    decided = _write_decided(os.path.join(directory, "decided"))
    undecided = _write_undecided(os.path.join(directory, "undecided"))
    convertible = {f"convertible_{kind}": path for kind, (path, _) in
                   write_convertible_files(os.path.join(directory, "c")).items()}
    return decided, undecided, convertible


def _pil_verdict(path):
    try:
        return fcn_image_files.inspect_image_file_with_pil(path)
    except fcn_image_files.BadImageError as e:
        return f"bad: {e}"


def _verdict(path):
    try:
        return fcn_image_files.inspect_image_file(path)
    except fcn_image_files.BadImageError as e:
        return f"bad: {e}"


def test_good_jpegs_and_pngs_are_read_as_pil_reads_them(files):
    decided, _, _ = files
    for name, path in decided.items():
        info = fcn_image_headers.read_image_header(path)
        assert info is not None, name
        assert info == _pil_verdict(path), name
    # The orientations were read, not defaulted.
    got = {name: fcn_image_headers.read_image_header(path).orientation
           for name, path in decided.items()}
    for orientation in range(1, 9):
        assert got[f"exif_{orientation}.jpg"] == orientation
        assert got[f"exif_{orientation}.png"] == orientation
    assert (got["exif_9.jpg"], got["xmp_orientation.jpg"],
            got["exif_and_xmp.jpg"]) == (1, 6, 3)
    modes = {name: fcn_image_headers.read_image_header(path).mode
             for name, path in decided.items()}
    assert (modes["cmyk.jpg"], modes["grayscale.jpg"], modes["one_bit.png"],
            modes["sixteen_bit.png"]) == ("CMYK", "L", "1", "I;16")


def test_every_file_gets_pils_verdict(files):
    decided, undecided, convertible = files
    for name, path in {**decided, **undecided, **convertible}.items():
        assert _verdict(path) == _pil_verdict(path), name


def test_bad_and_unusual_files_are_left_to_pil(files):
    _, undecided, _ = files
    left = {name for name, path in undecided.items()
            if fcn_image_headers.read_image_header(path) is None}
    assert left == set(undecided) - {"png_named.jpg"}
    # The bad ones are bad by PIL's verdict, with its messages.
    for name in ("zero_byte.jpg", "truncated.jpg", "truncated.png",
                 "corrupt.png", "html_page.jpg", "bomb.png",
                 "truncated_header.jpg", "soi_only.jpg", "png_header_only.png"):
        assert _verdict(undecided[name]).startswith("bad: "), name
    assert "decompression bomb" in _verdict(undecided["bomb.png"])


def test_a_missing_file_raises_oserror(tmp_path):
    with pytest.raises(OSError):
        fcn_image_headers.read_image_header(str(tmp_path / "missing.jpg"))


def test_pixel_limit_is_pils(files, monkeypatch):
    decided, _, _ = files
    path = decided["astronaut.jpg"]  # 512 x 512
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 512 * 512 - 1)
    assert fcn_image_headers.read_image_header(path) is None
    assert "decompression bomb" in _verdict(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 512 * 512)
    assert fcn_image_headers.read_image_header(path) == _pil_verdict(path)
