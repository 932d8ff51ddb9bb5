"""The backbones the framework trains: one `Backbone` row each.

What Keras' FCN modules know about a backbone (its Keras name, native and
smallest input size) is read from `keras.applications.<key>_fcn.SPEC`,
on first use, so that importing the table (the config, `--help`) loads no
TensorFlow. What only the framework knows is written in the rows here.
The global-pooling classifiers (`GlobalPoolingBackbone`: ResNet,
EfficientNet, ConvNeXt, ...) are converted by `keras.applications.fcn`;
their sizes are measured on the built model.
"""

import dataclasses
import functools
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

    @property
    def to_fcn(self):
        """The FCN module's `to_fcn`, e.g. `mobilenet_v2_fcn.to_fcn`."""
        return self.fcn_module.to_fcn

    def keras_builder(self):
        """Keras' own builder, e.g. `keras.applications.MobileNetV2`."""
        import keras

        return getattr(keras.applications, self.name)

    @property
    def preprocess_input(self):
        """The backbone's own `preprocess_input` (same for its FCN twin)."""
        import keras

        return getattr(keras.applications, self.key).preprocess_input


@functools.cache
def _geometry(builder_name, input_size):
    """`fcn.geometry` of the FCN of Keras' model, built with random
    weights at its native size (`input_size` where it takes any size)."""
    import keras
    from keras.applications import fcn

    model = getattr(keras.applications, builder_name)(weights=None)
    geometry = fcn.geometry(fcn.to_fcn(model, input_size=input_size))
    keras.backend.clear_session()
    return geometry


@dataclasses.dataclass(frozen=True)
class GlobalPoolingBackbone:
    """A global-pooling classifier of `keras.applications` (ResNet50,
    EfficientNetV2B0, ...), converted by `keras.applications.fcn.to_fcn`.

    Its sizes are measured on the built model (`fcn.geometry`), on first
    use.

    Attributes:
        key: the config's `model`: the builder's name in lower case.
        name: Keras' builder, e.g. `"ResNet50"`.
        module: the `keras.applications` module with its
            `preprocess_input`, e.g. `"resnet50"`.
        input_size: the size it was trained at, only where the built
            model takes any size (MobileNetV3: 224, Keras' ImageNet size).
    """

    key: str
    name: str
    module: str
    input_size: int | None = None
    takes_alpha = False

    @property
    def geometry(self):
        return _geometry(self.name, self.input_size)

    @property
    def default_size(self):
        """The input size the backbone was trained on (the paper's "1x")."""
        return self.geometry.native_size[0]

    @property
    def min_size(self):
        """The smallest base size: its final feature map is then 1x1."""
        return self.geometry.min_model_size[0]

    def builder_kwargs(self, alpha):
        return {}

    def label(self, alpha):
        return self.key

    def imagenet_file(self, alpha):
        """Keras' own ImageNet file of the builder (name, URL and hash read
        from `keras.applications`, nothing downloaded)."""
        from keras.applications import fcn_weights

        return fcn_weights.builder_file(self.keras_builder())

    def keras_builder(self):
        import keras

        return getattr(keras.applications, self.name)

    @property
    def preprocess_input(self):
        import keras

        return getattr(keras.applications, self.module).preprocess_input

    @property
    def to_fcn(self):
        """`keras.applications.fcn.to_fcn`, installed by FCN_setup.py."""
        try:
            from keras.applications import fcn
        except ImportError as error:
            raise ImportError(
                "keras.applications.fcn is missing: the FCN extensions are "
                "not installed in this Keras. Run `python FCN_setup.py "
                "install`."
            ) from error
        return fcn.to_fcn


# keras.applications module of each family's preprocess_input, by builder.
_GLOBAL_POOLING = (
    (("ResNet50", "resnet50"), ("ResNet101", "resnet"),
     ("ResNet152", "resnet")),
    (("ResNet50V2", "resnet_v2"), ("ResNet101V2", "resnet_v2"),
     ("ResNet152V2", "resnet_v2")),
    tuple((f"DenseNet{n}", "densenet") for n in (121, 169, 201)),
    tuple((f"EfficientNetB{i}", "efficientnet") for i in range(8)),
    tuple(
        (f"EfficientNetV2{s}", "efficientnet_v2")
        for s in ("B0", "B1", "B2", "B3", "S", "M", "L")
    ),
    tuple(
        (f"ConvNeXt{s}", "convnext")
        for s in ("Tiny", "Small", "Base", "Large", "XLarge")
    ),
    (("MobileNet", "mobilenet"),),
    (("MobileNetV3Small", "mobilenet_v3"), ("MobileNetV3Large", "mobilenet_v3")),
    (("NASNetMobile", "nasnet"), ("NASNetLarge", "nasnet")),
    (("InceptionResNetV2", "inception_resnet_v2"),),
)

TABLE = {
    backbone.key: backbone
    for backbone in (
        Backbone("vgg16"),
        Backbone("vgg19"),
        Backbone("inception_v3"),
        Backbone("xception"),
        Backbone("mobilenet_v2", takes_alpha=True),
        *(
            GlobalPoolingBackbone(
                name.lower(),
                name,
                module,
                224 if name.startswith("MobileNetV3") else None,
            )
            for family in _GLOBAL_POOLING
            for name, module in family
        ),
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
