"""Checking JPEG and PNG files from their structure, without decoding them.

`read_image_header(path)` gives what `fcn_image_files.inspect_image_file`
would (the same `ImageInfo`: size, EXIF orientation, PIL's format and mode)
for the common case of a complete, well-formed JPEG or PNG, at a fraction of
the cost of opening it with PIL (a few dozen microseconds, mostly one read):

- JPEG: the marker segments up to the start of scan are walked as PIL's
  `JpegImagePlugin` does (SOF for size, components and precision; the first
  EXIF APP1 for the orientation; DQT tables checked), and the file must end
  with the EOI marker, which a truncated file lacks;
- PNG: every chunk's CRC is checked up to IEND, as PIL's `verify` does (so
  a truncated or corrupt file is caught), and the chunks before the image
  data are those PIL reads without anything that could fail.

It returns `None` wherever it cannot be sure of PIL's verdict: other
formats, bad or truncated files, anything unusual (a second SOF, MPO
pictures, XMP or compressed text chunks, arithmetic coding, images over
`PIL.Image.MAX_IMAGE_PIXELS`, ...). Those files go to PIL, which then gives
the verdict and its message. Bytes flipped inside a JPEG's entropy-coded
data cannot be seen here (nor, mostly, by PIL); the dataset pipeline drops
a file that then fails to decode (see `fcn_image_dataset`).
"""

import os
import re
import struct
import zlib

from PIL import Image as pil_image
from PIL import ImageFile
from PIL import PngImagePlugin

from keras.src.utils import fcn_image_info

HEAD_BYTES = 65536  # a JPEG's header segments almost always fit
OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SOI = b"\xff\xd8\xff"
JPEG_EOI = b"\xff\xd9"
# SOF markers that libjpeg (PIL and TF) decodes: baseline, extended,
# progressive, all Huffman-coded.
JPEG_SOF = (0xC0, 0xC1, 0xC2)
JPEG_MODES = {1: "L", 3: "RGB", 4: "CMYK"}
JPEG_SEGMENT = struct.Struct(">BBH")  # 0xFF, marker, length
XMP = b"http://ns.adobe.com/xap/1.0/\x00"
# PNG chunks before the image data that PIL parses with no failure beyond
# the checks done here (the minimum lengths are PIL's), or reads as
# unknown; chunks with other handlers in PIL (zTXt, iTXt, APNG) are left to
# PIL.
PNG_MIN_LENGTH = {b"PLTE": 0, b"tRNS": 0, b"gAMA": 4, b"cHRM": 32, b"sRGB": 1,
                  b"pHYs": 9, b"tEXt": 0, b"eXIf": 0}
PNG_HANDLED = {b"zTXt", b"iTXt", b"acTL", b"fcTL", b"fdAT", b"IEND"}
# tEXt keywords that change what PIL reads as EXIF.
PNG_EXIF_TEXT = (b"exif", b"Raw profile type exif", b"XML:com.adobe.xmp")
EXIF_ORIENTATION = 0x0112
XMP_ORIENTATION = re.compile(rb'tiff:Orientation(="|>)([0-9])')  # PIL's


def read_image_header(path):
    """Checks a JPEG or PNG file from its structure, without decoding it.

    Args:
        path: Path to the image file.

    Returns:
        The `ImageInfo` that `inspect_image_file` gives for a good file, or
        `None` if the file is bad, of another format, or unusual: then only
        PIL can tell. Raises `OSError` if the file cannot be read.
    """
    return stat_and_read_header(path)[1]


def stat_and_read_header(path):
    """`(os.stat_result, read_image_header(path))`, both from one open."""
    # os.open and os.read: a third of the cost of open() and its buffers.
    fd = os.open(path, OPEN_FLAGS)
    try:
        return os.fstat(fd), _read_header(fd)
    finally:
        os.close(fd)


def _read_header(fd):
    head = os.read(fd, HEAD_BYTES)
    if head.startswith(PNG_SIGNATURE):
        return _png_info(head + _read_rest(fd) if len(head) == HEAD_BYTES
                         else head)
    if not head.startswith(JPEG_SOI):
        return None
    walked = _jpeg_walk(head)
    if len(head) < HEAD_BYTES:
        return _jpeg_info(walked, head)
    if walked is not None and not walked[3]:
        # Header segments beyond the first read (large EXIF or ICC data).
        head += _read_rest(fd)
        walked = _jpeg_walk(head)
    os.lseek(fd, -len(JPEG_EOI), os.SEEK_END)
    return _jpeg_info(walked, os.read(fd, len(JPEG_EOI)))


def _read_rest(fd):
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _checked(info):
    """`info`, unless PIL must judge it (no pixels, or over PIL's limit)."""
    width, height = info.width, info.height
    limit = pil_image.MAX_IMAGE_PIXELS
    if not width or not height or (limit is not None and width * height > limit):
        return None
    return info


def _jpeg_walk(data):
    """(SOF payload, EXIF payload, XMP payload, reached SOS) of a JPEG's
    header, or None for anything PIL might read differently."""
    pos, end = 2, len(data)
    sof = exif = xmp = None
    unpack = JPEG_SEGMENT.unpack_from
    while pos + 4 <= end:
        ff, marker, length = unpack(data, pos)
        if ff != 0xFF:
            return None  # PIL skips junk between segments: let it judge.
        if marker == 0xFF:  # Fill byte.
            pos += 1
            continue
        if marker == 0xDA:
            return sof, exif, xmp, True
        start, pos = pos + 4, pos + 2 + length
        if length < 2 or pos > end:
            break
        # The common segments first: this loop is most of the scan's time.
        if marker == 0xC4 or marker == 0xDD or marker == 0xFE:
            continue  # DHT, DRI, COM: skipped by their length, as PIL does.
        if marker == 0xDB:
            if not _dqt_ok(data, start, pos):
                return None
        elif marker in JPEG_SOF:
            if sof is not None:
                return None
            sof = data[start:pos]
        elif not 0xE0 <= marker <= 0xEF:
            return None
        elif marker == 0xE0:
            if data.startswith(b"JFIF", start, pos) and length < 9:
                return None
        elif marker == 0xE1:
            if data.startswith(b"Exif\0\0", start, pos):
                # PIL appends a second EXIF segment to the first.
                segment = data[start + 6:pos]
                exif = segment if exif is None else exif + segment
            elif data.startswith(XMP, start, pos):
                xmp = data[start + len(XMP):pos]  # PIL keeps the last.
        elif marker == 0xE2:
            if data.startswith(b"MPF\0", start, pos):
                return None  # PIL may open it as MPO.
            if data.startswith(b"ICC_PROFILE\0", start, pos) and length < 16:
                return None
        elif marker == 0xED:
            if (data.startswith(b"Photoshop 3.0\0", start, pos)
                    and not _photoshop_ok(data[start:pos])):
                return None
        elif marker == 0xEE:
            if data.startswith(b"Adobe", start, pos) and length < 9:
                return None
    return sof, exif, xmp, False


def _dqt_ok(data, pos, end):
    """Whether PIL's DQT parser accepts the segment `data[pos:end]`: its
    tables (65 or 129 bytes) must fill it exactly."""
    while pos < end:
        pos += 65 if data[pos] < 16 else 129
    return pos == end


def _jpeg_info(walked, tail):
    """The `ImageInfo` of a walked JPEG header whose file ends in `tail`."""
    if walked is None or not tail.endswith(JPEG_EOI):
        return None
    sof, exif, xmp, reached_scan = walked
    if not reached_scan or sof is None or len(sof) < 6 or sof[0] != 8:
        return None
    mode = JPEG_MODES.get(sof[5])
    orientation = 1 if exif is None and xmp is None else _orientation(exif, xmp)
    if mode is None or orientation is None:
        return None
    height, width = struct.unpack_from(">HH", sof, 1)
    info = fcn_image_info.ImageInfo(width, height, orientation, "JPEG", mode)
    return _checked(info)


def _png_info(data):
    """Walks the chunks as PIL's open and `verify` do: CRCs up to IEND."""
    pos, end = len(PNG_SIGNATURE), len(data)
    header = exif = None
    image_data = False
    while True:
        if pos + 8 > end:
            return None
        length, cid = struct.unpack_from(">I4s", data, pos)
        if not cid.isalpha() or pos + 12 + length > end:
            return None
        if cid == b"IEND" and image_data:
            break
        chunk = data[pos + 8: pos + 8 + length]
        if zlib.crc32(chunk, zlib.crc32(cid)) != struct.unpack_from(
            ">I", data, pos + 8 + length
        )[0]:
            return None
        if cid == b"IDAT":
            image_data = True
        elif image_data:
            pass  # After the image data PIL only checks CRCs.
        elif header is None:
            if cid != b"IHDR" or length < 13:
                return None
            header = chunk
        elif cid in PNG_HANDLED or length < PNG_MIN_LENGTH.get(cid, 0):
            return None
        elif cid == b"tEXt" and chunk.split(b"\0", 1)[0] in PNG_EXIF_TEXT:
            return None
        elif cid == b"eXIf":
            exif = chunk
        elif cid == b"iCCP" and not _iccp_ok(chunk):
            return None
        elif cid == b"tRNS" and len(chunk) < _trns_length(header):
            return None
        pos += 12 + length
    if header is None or header[11] or ImageFile.LOAD_TRUNCATED_IMAGES:
        return None
    width, height, bits, color = struct.unpack_from(">IIBB", header)
    mode = PngImagePlugin._MODES.get((bits, color), (None,))[0]
    orientation = 1 if exif is None else _orientation(exif, None)
    if mode is None or orientation is None:
        return None
    info = fcn_image_info.ImageInfo(width, height, orientation, "PNG", mode)
    return _checked(info)


def _iccp_ok(chunk):
    """Whether PIL's iCCP parser accepts the chunk (a profile that does not
    decompress is accepted, as None)."""
    i = chunk.find(b"\0")
    if i + 1 >= len(chunk) or chunk[i + 1] != 0:
        return False
    try:
        PngImagePlugin._safe_zlib_decompress(chunk[i + 2:])
    except ValueError:
        return False
    except zlib.error:
        pass
    return True


def _trns_length(header):
    """PIL's minimum tRNS length: 6 bytes for RGB, 2 for gray, 0 for palette."""
    mode = PngImagePlugin._MODES.get((header[8], header[9]), (None,))[0]
    return {"RGB": 6, "1": 2, "L": 2, "I;16": 2}.get(mode, 0)


def _photoshop_ok(segment):
    """Whether PIL's parser of Photoshop's APP13 resources accepts it (it
    catches `struct.error`, not `IndexError`)."""
    offset, end = 14, len(segment)
    while segment[offset: offset + 4] == b"8BIM":
        offset += 4
        if offset + 2 > end:
            return True
        (code,) = struct.unpack_from(">H", segment, offset)
        offset += 2
        if offset >= end:
            return False
        offset += 1 + segment[offset]
        offset += offset & 1
        if offset + 4 > end:
            return True
        (size,) = struct.unpack_from(">I", segment, offset)
        offset += 4
        if code == 0x03ED and len(segment[offset: offset + size]) < 14:
            return True
        offset += size
        offset += offset & 1
    return True


def _orientation(exif, xmp):
    """The orientation `fcn_image_files.orientation_of` gives: from EXIF,
    else from XMP's tiff:Orientation, as PIL's `getexif`; None if unusual."""
    orientation = 0 if exif is None else _exif_orientation(exif)
    if orientation == 0 and xmp is not None:
        match = XMP_ORIENTATION.search(xmp)
        orientation = int(match[2]) if match else 0
    if orientation is None:
        return None
    return orientation if 1 <= orientation <= 8 else 1


def _exif_orientation(tiff):
    """The orientation tag PIL's `getexif` reads from EXIF's TIFF data
    (IFD0); 0 if absent, None if unusual."""
    if tiff[:4] == b"II*\0":
        order = "<"
    elif tiff[:4] == b"MM\0*":
        order = ">"
    else:
        return None
    try:
        (offset,) = struct.unpack_from(order + "I", tiff, 4)
        (count,) = struct.unpack_from(order + "H", tiff, offset)
        if offset + 2 + 12 * count > len(tiff):
            return None
        for i in range(count):
            tag, kind, n = struct.unpack_from(order + "HHI", tiff, offset + 2 + 12 * i)
            if tag != EXIF_ORIENTATION:
                continue
            if kind != 3 or n != 1:
                return None
            (value,) = struct.unpack_from(order + "H", tiff, offset + 10 + 12 * i)
            return value if value else -1  # Present but 0: out of range.
    except struct.error:
        return None
    return 0
