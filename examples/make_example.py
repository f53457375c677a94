"""Regenerate examples/lenet_int8.tflite: an untrained LeNet-5-style CNN, int8, for 28x28x1 inputs."""

from pathlib import Path


def lenet():
    from costmodel.convert import quiet

    with quiet():
        import keras

    x = inp = keras.Input((28, 28, 1), batch_size=1)
    x = keras.layers.Conv2D(6, 5, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(16, 5, activation="relu")(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(120, activation="relu")(x)
    x = keras.layers.Dense(84, activation="relu")(x)
    x = keras.layers.Dense(10, activation="softmax")(x)
    return keras.Model(inp, x, name="lenet")


if __name__ == "__main__":
    from costmodel.convert import keras_to_tflite

    out = Path(__file__).with_name("lenet_int8.tflite")
    out.write_bytes(keras_to_tflite(lenet(), "int8"))
    print(f"wrote {out} ({out.stat().st_size} bytes)")
