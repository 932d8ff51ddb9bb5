"""The backbones the framework trains: one `Backbone` row each.

What Keras' FCN modules know about a backbone (its Keras name, native and
smallest input size) is read from `keras.applications.<key>_fcn.SPEC`,
on first use, so that importing the table (the config, `--help`) loads no
TensorFlow. What only the framework knows is written in the rows here.
"""

import dataclasses
import importlib


@dataclasses.dataclass(frozen=True)
class Backbone:
    """One backbone, by the name the config's `model` takes.

    Attributes:
        key: e.g. `"mobilenet_v2"`: the config's `model`, and the name of
            Keras' module (`keras.applications.<key>`) and of its FCN twin
            (`<key>_fcn`).
        takes_alpha: whether the builders take the config's `alpha` (the
            width multiplier; MobileNetV2's ImageNet file depends on it).
    """

    key: str
    takes_alpha: bool = False

    @property
    def fcn_module(self):
        """`keras.applications.<key>_fcn`, installed by FCN_setup.py."""
        name = f"keras.applications.{self.key}_fcn"
        try:
            return importlib.import_module(name)
        except ImportError as error:
            raise ImportError(
                f"{name} is missing: the FCN extensions are not installed in "
                "this Keras. Run `python FCN_setup.py install`."
            ) from error

    @property
    def spec(self):
        """The FCN module's `BackboneSpec`."""
        return self.fcn_module.SPEC

    @property
    def name(self):
        """Keras' name of the application, e.g. `"MobileNetV2"`."""
        return self.spec.name

    @property
    def default_size(self):
        """The input size the backbone was trained on (the paper's "1x")."""
        return self.spec.default_size

    @property
    def min_size(self):
        """The smallest input side the backbone accepts."""
        return self.spec.min_size

    def builder_kwargs(self, alpha):
        """The arguments that Keras' builders take besides the common ones."""
        return {"alpha": alpha} if self.takes_alpha else {}

    def label(self, alpha):
        """The model as results and logs name it."""
        return f"{self.key} (alpha={alpha})" if self.takes_alpha else self.key

    def imagenet_file(self, alpha):
        """The `fcn_weights.KerasFile` of the ImageNet weights (with the top,
        at the native size: what `keras.applications` loads)."""
        return self.spec.imagenet_weights(**self.builder_kwargs(alpha))

    def keras_builder(self):
        """Keras' own builder, e.g. `keras.applications.MobileNetV2`."""
        import keras

        return getattr(keras.applications, self.name)

    @property
    def preprocess_input(self):
        """The backbone's own `preprocess_input` (same for its FCN twin)."""
        import keras

        return getattr(keras.applications, self.key).preprocess_input


TABLE = {
    backbone.key: backbone
    for backbone in (
        Backbone("vgg16"),
        Backbone("vgg19"),
        Backbone("inception_v3"),
        Backbone("xception"),
        Backbone("mobilenet_v2", takes_alpha=True),
    )
}
BACKBONES = tuple(TABLE)


def get_backbone(key):
    """The `Backbone` of `key` (a config's `model`)."""
    if key not in TABLE:
        raise ValueError(
            f"`model` must be one of {BACKBONES}. Received: model={key!r}"
        )
    return TABLE[key]
