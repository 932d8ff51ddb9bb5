"""`keras.applications.MultiCrop`: pooling, training, saving and loading."""

import os
import warnings

import numpy as np
import pytest

import keras
import tensorflow as tf

from loader_test_images import write_photos


def small_fcn(classes=3, name="fcn"):
    """A fully convolutional classifier: conv score map, global max pooling."""
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Conv2D(classes, 1, activation="softmax", name="score")(x)
    outputs = keras.layers.GlobalMaxPooling2D(name="pool")(x)
    return keras.Model(inputs, outputs, name=name)


@pytest.fixture(scope="module")
def multicrop_dataset(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("photos"))
    write_photos(directory, classes=("a", "b", "c"))
    dataset = keras.utils.fcn_image_dataset_from_directory(
        directory, image_size=32, resize_mode="multicrop", batch_size=3, seed=0,
        verbose=False)
    return dataset.map(lambda x, y: (x / 255.0, y))


@pytest.mark.backend_suite
@pytest.mark.parametrize("pooling, reduce", [("max", np.max), ("avg", np.mean)])
def test_pools_the_crops_predictions(pooling, reduce):
    fcn = small_fcn()
    x = np.random.RandomState(0).uniform(0, 1, (4, 3, 24, 32, 3)).astype("float32")
    ours = keras.applications.MultiCrop(fcn, pooling=pooling).predict(x, verbose=0)
    per_crop = fcn.predict(x.reshape(12, 24, 32, 3), verbose=0).reshape(4, 3, 3)
    np.testing.assert_allclose(ours, reduce(per_crop, axis=1), rtol=1e-5, atol=1e-6)


def test_default_pooling_is_max():
    assert keras.applications.MultiCrop(small_fcn()).pooling == "max"


def test_output_shape():
    model = keras.applications.MultiCrop(small_fcn(classes=5))
    assert model.compute_output_shape((None, 3, 32, 32, 3)) == (None, 5)
    assert model(np.zeros((2, 3, 32, 32, 3), "float32")).shape == (2, 5)


@pytest.mark.parametrize("kwargs, message", [
    ({"pooling": "min"}, "Received: pooling='min'"),
    ({"model": "vgg16"}, "Received: model='vgg16'"),
])
def test_arguments_are_checked(kwargs, message):
    kwargs = {"model": small_fcn(), **kwargs}
    with pytest.raises(ValueError, match=message):
        keras.applications.MultiCrop(**kwargs)


@pytest.mark.backend_suite
def test_trains_with_fit_and_evaluates(multicrop_dataset):
    model = keras.applications.MultiCrop(small_fcn())
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(multicrop_dataset, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    loss, accuracy = model.evaluate(multicrop_dataset, verbose=0)
    assert np.isfinite(loss) and 0 <= accuracy <= 1
    assert model.predict(multicrop_dataset, verbose=0).shape == (6, 3)


@pytest.mark.backend_suite
def test_save_and_load_round_trip(tmp_path, multicrop_dataset):
    model = keras.applications.MultiCrop(small_fcn(), pooling="avg")
    model.compile("adam", "sparse_categorical_crossentropy")
    checkpoint = str(tmp_path / "best.keras")
    model.fit(multicrop_dataset, epochs=1, verbose=0,
              callbacks=[keras.callbacks.ModelCheckpoint(checkpoint)])
    x = next(iter(multicrop_dataset))[0]
    for path in [checkpoint, str(tmp_path / "saved.keras")]:
        if not os.path.exists(path):
            model.save(path)
        loaded = keras.models.load_model(path)
        assert isinstance(loaded, keras.applications.MultiCrop)
        assert loaded.pooling == "avg"
        np.testing.assert_allclose(loaded.predict(x, verbose=0),
                                   model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    # Training goes on after loading.
    loaded.fit(multicrop_dataset, epochs=1, verbose=0)


def test_config_round_trip():
    model = keras.applications.MultiCrop(small_fcn(), pooling="avg", name="mc")
    config = keras.saving.serialize_keras_object(model)
    clone = keras.saving.deserialize_keras_object(config)
    assert clone.name == "mc" and clone.pooling == "avg"
    assert clone.model.get_config() == model.model.get_config()


def test_legacy_generator_feeds_multicrop(tmp_path):
    directory = str(tmp_path)
    write_photos(directory, classes=("a", "b", "c"))
    keras.utils.set_load_img_type(4)
    try:
        generator = tf.keras.preprocessing.image.ImageDataGenerator(rescale=1 / 255)
        iterator = generator.flow_from_directory(
            directory, target_size=(32, 32), batch_size=3, class_mode="sparse")
        model = keras.applications.MultiCrop(small_fcn())
        model.compile("adam", "sparse_categorical_crossentropy")
        history = model.fit(iterator, epochs=1, verbose=0)
    finally:
        keras.utils.set_load_img_type(0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.backend_suite
def test_legacy_generator_hook_says_it_is_tensorflow_only():
    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                keras.utils.set_load_img_type(4)
        else:
            with pytest.warns(UserWarning, match="TensorFlow-only") as caught:
                keras.utils.set_load_img_type(4)
            assert f"KERAS_BACKEND={backend}" in str(caught[0].message)
            assert "\n" not in str(caught[0].message)
    finally:
        keras.utils.set_load_img_type(0)
