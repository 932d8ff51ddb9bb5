"""What a checked image file is: `ImageInfo`, shared by every checker.

`fcn_image_headers` (JPEG and PNG from their structure) and
`fcn_image_files` (any file, with PIL) both return it; `fcn_image_scan`
remembers it per file and `fcn_image_loader` sizes images from it.
"""

import collections

# EXIF orientations 5 to 8 swap width and height.
TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)

ImageInfo = collections.namedtuple(
    "ImageInfo", ["width", "height", "orientation", "format", "mode"]
)
ImageInfo.__doc__ = """What `fcn_image_files.inspect_image_file` learns from a file.

`width` and `height` are those of the stored pixels, before the EXIF
`orientation` (1 to 8; 1 = upright) is applied.
"""


def upright_size(info):
    """`(width, height)` of a checked file once its EXIF orientation is applied."""
    if info.orientation in TRANSPOSING_ORIENTATIONS:
        return info.height, info.width
    return info.width, info.height
