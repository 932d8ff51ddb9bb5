"""Graph-side decoding and resizing of checked image files (tf.data).

`ImageLoader` holds the per-file tensors a pipeline carries (`records`) and
the per-image graph function `load(record, flip)` that decodes a file (with
TF, or with PIL through `fcn_image_files` where TF would get it wrong),
applies its EXIF orientation and resizes it for a resize mode of
`fcn_image_dataset` (`"stretch"`, `"crop"`, `"pad"`, `"multicrop"`,
`"native"`). The infos come from the bad-file scan (`fcn_image_scan`).
"""

import io

import numpy as np

from keras.src.utils import fcn_image_files
from keras.src.utils import image_utils
from keras.src.utils.fcn_image_info import upright_size
from keras.src.utils.module_utils import tensorflow as tf

NUM_CROPS = 3
NUM_CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}


class ImageLoader:
    """Decodes and resizes the checked files of one dataset (tf.data).

    `records` holds the per-file tensors the pipeline carries; `load(record,
    flip)` is the per-image graph function. It is specialized to the files:
    the branches for PIL decoding and EXIF rotation exist only if some file
    needs them, so a folder of plain JPEGs pays for neither.
    """

    def __init__(self, resize_mode, size, color_mode, interpolation, stride,
                 paths, infos):
        self.resize_mode = resize_mode
        self.size = size
        self.color_mode = color_mode
        self.channels = NUM_CHANNELS[color_mode]
        self.interpolation = interpolation
        self.stride = stride
        count = len(infos)
        use_pil = np.fromiter((not self._tf_decodes(i) for i in infos), bool, count)
        # PIL applies the orientation itself.
        orientation = np.fromiter((i.orientation for i in infos), np.int32, count)
        orientation[use_pil] = 1
        self.records = {
            # Objects: the dataset's own path strings, not a fixed-width
            # copy 4 bytes per character of the longest path.
            "path": np.asarray(paths, dtype=object),
            "use_pil": use_pil,
            "rotated": orientation != 1,
            "orientation": orientation,
        }
        if resize_mode == "native":
            self.records["native_size"] = np.asarray(
                [self.native_size(*upright_size(info)) for info in infos],
                dtype=np.int32,
            ).reshape(-1, 2)

    def _tf_decodes(self, info):
        """Whether TF's decoder gives the same pixels as PIL for this file
        (measured: TF misreads palette BMPs, refuses 1-bit BMPs, GIFs and
        BMPs in grayscale, JPEGs in RGBA; PIL handles CMYK JPEGs)."""
        if info.format == "JPEG":
            return info.mode in ("RGB", "L") and self.channels in (1, 3)
        if info.format == "PNG":
            return info.mode != "1"
        if info.format == "GIF":
            return self.channels == 3
        if info.format == "BMP":
            return info.mode in ("RGB", "RGBA") and self.channels in (3, 4)
        return False

    def native_size(self, width, height):
        """`(height, width)` for `"native"`: shorter side S, longer side
        rounded half up to a multiple of the stride (and at least S)."""
        side = self.size[0]
        short, long = min(width, height), max(width, height)
        long = max(side, self.stride * int(long * side / short / self.stride + 0.5))
        return (long, side) if height > width else (side, long)

    # ------------------------------------------------------- graph side

    def load(self, record, flip=None):
        """The float32 image of one record, flipped left-right if `flip`."""
        data = tf.io.read_file(record["path"])
        if self.resize_mode == "crop":
            img = self._crop(self._decode(data, record))
        elif self.resize_mode == "pad":
            img = self._pad(self._decode(data, record))
        elif self.resize_mode == "multicrop":
            img = self._multicrop(self._decode(data, record))
        elif self.resize_mode == "native":
            img = self._resize(self._decode(data, record), record["native_size"])
        else:
            img = self._resize(self._decode(data, record), self.size)
        img = tf.cast(img, "float32")
        return img if flip is None else flipped(img, flip)

    def _select(self, name, record, if_true, if_false):
        """`if_true()` for records whose `name` is True, else `if_false()`;
        no branch in the graph when all files agree."""
        values = self.records[name]
        if values.all():
            return if_true()
        if not values.any():
            return if_false()
        return tf.cond(record[name], if_true, if_false)

    def _decode(self, data, record):
        def with_tf():
            img = tf.io.decode_image(data, channels=self.channels,
                                     expand_animations=False)
            return self._select("rotated", record,
                                lambda: orient(img, record["orientation"]),
                                lambda: img)

        def with_pil():
            img = tf.numpy_function(self._pil_decode, [data], tf.uint8, stateful=False)
            img.set_shape((None, None, self.channels))
            return img

        return self._select("use_pil", record, with_pil, with_tf)

    def _pil_decode(self, data):
        img = fcn_image_files.open_image(io.BytesIO(data), self.color_mode)
        return np.asarray(img, dtype=np.uint8).reshape(img.size[1], img.size[0], -1)

    def _resize(self, images, size):
        # What Keras' `smart_resize` and `resize_with_pad` resize with.
        return tf.image.resize(images, size, method=self.interpolation)

    def _crop(self, img):
        return image_utils.smart_resize(
            img, self.size, interpolation=self.interpolation,
            data_format="channels_last", backend_module=tf_backend(),
        )

    def _multicrop(self, img):
        """Resizes to cover the target (`fcn_image_loading.cover_size`),
        then cuts three crops: start, centre, end."""
        shape = tf.shape(img, out_type="int64")
        height, width = shape[0], shape[1]
        target_height, target_width = (tf.constant(t, "int64") for t in self.size)
        wide = width * target_height >= height * target_width
        # Rounded half up, as `fcn_image_loading.cover_size`.
        cover_width = (2 * width * target_height + height) // (2 * height)
        cover_height = (2 * height * target_width + width) // (2 * width)
        new_height = tf.where(wide, target_height,
                              tf.maximum(cover_height, target_height))
        new_width = tf.where(wide, tf.maximum(cover_width, target_width),
                             target_width)
        img = self._resize(img, tf.cast(tf.stack([new_height, new_width]), "int32"))
        top, left = new_height - target_height, new_width - target_width
        crops = tf.stack([
            img[t:t + target_height, l:l + target_width]
            for t, l in [(0, 0), (top // 2, left // 2), (top, left)]
        ])
        return tf.ensure_shape(crops, (NUM_CROPS, *self.size, self.channels))

    def _pad(self, img):
        """Resizes to fit and pads, as `fcn_image_loading.pad_placement`."""
        shape = tf.shape(img, out_type="int64")
        height, width = shape[0], shape[1]
        target_height, target_width = (tf.constant(t, "int64") for t in self.size)
        wide = width * target_height >= height * target_width
        new_height = tf.where(
            wide, tf.maximum(height * target_width // width, 1), target_height
        )
        new_width = tf.where(
            wide, target_width, tf.maximum(width * target_height // height, 1)
        )
        zero = tf.constant(0, "int64")
        top = tf.where(
            wide, (target_height * width - height * target_width) // (2 * width), zero
        )
        left = tf.where(
            wide, zero, (target_width * height - width * target_height) // (2 * height)
        )
        img = self._resize(img, tf.cast(tf.stack([new_height, new_width]), "int32"))
        img = tf.image.pad_to_bounding_box(
            img, tf.cast(top, "int32"), tf.cast(left, "int32"), *self.size
        )
        return tf.ensure_shape(img, (*self.size, self.channels))


def orient(img, orientation):
    """Applies an EXIF orientation (1 to 8) as `PIL.ImageOps.exif_transpose`."""
    def transposed():
        return tf.transpose(img, (1, 0, 2))

    return tf.switch_case(orientation - 1, [
        lambda: img,                                   # 1: upright
        lambda: tf.reverse(img, [1]),                  # 2: mirrored
        lambda: tf.reverse(img, [0, 1]),               # 3: rotated 180
        lambda: tf.reverse(img, [0]),                  # 4: flipped
        transposed,                                    # 5: transposed
        lambda: tf.reverse(transposed(), [1]),         # 6: rotated 90 cw
        lambda: tf.reverse(transposed(), [0, 1]),      # 7: transversed
        lambda: tf.reverse(transposed(), [0]),         # 8: rotated 90 ccw
    ])


def flipped(img, flip):
    """`img` flipped left-right if `flip`; the crops of a multicrop image
    share the flip."""
    # Width is the second-last axis for (h, w, c) and (3, h, w, c) alike.
    return tf.cond(flip, lambda: tf.reverse(img, [-2]), lambda: img)


def tf_backend():
    from keras.src.backend import tensorflow

    return tensorflow
