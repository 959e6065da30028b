// The book's first convnet (Deep Learning with Python, chapter 8) with tapeflow's Keras API,
// on the real Fashion-MNIST from Debian's dataset-fashion-mnist:
//
//     inputs = keras.Input(shape=(28, 28, 1))
//     x = layers.Conv2D(filters=32, kernel_size=3, activation="relu")(inputs)
//     x = layers.MaxPooling2D(pool_size=2)(x)
//     x = layers.Conv2D(filters=64, kernel_size=3, activation="relu")(x)
//     x = layers.MaxPooling2D(pool_size=2)(x)
//     x = layers.Conv2D(filters=128, kernel_size=3, activation="relu")(x)
//     x = layers.Flatten()(x)
//     outputs = layers.Dense(10, activation="softmax")(x)
//     model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
//     model.fit(train_images, train_labels, epochs=5, batch_size=64)
//
// Prints the test accuracy, the median seconds per epoch and the peak resident memory (on a
// GPU also the device's peak, and first which device it is).
// Usage: convnet [epochs (default 5)] [training examples (default all 60000)]
//                [--device cpu|cuda|cuda:N (default cpu)]
#include <algorithm>
#include <climits>
#include <cstdio>

#include "sample_util.hpp"
#include "tapeflow/tapeflow.hpp"

using namespace tapeflow;
using namespace tapeflow::layers;
using samples::EpochTimer;

int main(int argc, char** argv) {
  samples::Args args;
  // training examples: all by default; a larger count than the 60000 there are means all
  if (!samples::parse_args(argc, argv,
                           "convnet [epochs (default 5)] [training examples (default all)] [--device cpu|cuda|cuda:N]",
                           {{"epochs", 5, INT_MAX}, {"training examples", LLONG_MAX, LLONG_MAX}}, args))
    return 2;
  const int epochs = static_cast<int>(args.counts[0]);
  const std::int64_t subset = args.counts[1];
  try {
    if (!samples::print_device_status("convnet", args.device)) return 1;
    const MnistData data = load_mnist();
    const std::int64_t n = std::min<std::int64_t>(subset, data.train_images.dim(0));
    // [n, 28, 28] -> [n, 28, 28, 1] (NHWC): views, already float32 in [0, 1]
    const Tensor train_images = data.train_images(Slice(0, n)).reshape({n, 28, 28, 1});
    const Tensor train_labels = data.train_labels(Slice(0, n));
    const Tensor test_images = data.test_images.reshape({-1, 28, 28, 1});

    Sequential model(Conv2D(32, 3, "relu"), MaxPooling2D(2), Conv2D(64, 3, "relu"), MaxPooling2D(2),
                     Conv2D(128, 3, "relu"), Flatten(), Dense(10, "softmax"));
    model.set_device(args.device);  // the weights live there; fit copies each batch over
    model.compile("rmsprop", "sparse_categorical_crossentropy", {"accuracy"});
    model.build({-1, 28, 28, 1});
    model.summary();

    auto timer = std::make_shared<EpochTimer>(args.device);
    FitOptions options;
    options.epochs = epochs;
    options.batch_size = 64;
    options.callbacks = {timer};
    model.fit(train_images, train_labels, options);

    const Logs test = model.evaluate(test_images, data.test_labels, 256);
    std::printf("test accuracy: %.4f\n", test.at("accuracy"));
    std::printf("test loss: %.4f\n", test.at("loss"));
    std::printf("seconds per epoch (median of %zu, %lld examples): %.3f\n", timer->seconds.size(),
                static_cast<long long>(n), samples::median(timer->seconds));
    if (args.device.is_cuda()) {
      // fit reads the loss and metrics once per epoch, not after each batch
      std::printf("host waits for the device per epoch (median): %.0f\n", samples::median(timer->waits));
    }
    samples::print_peak_memory(args.device);
  } catch (const Error& e) {
    std::fprintf(stderr, "convnet: %s\n", e.what());
    return 1;
  }
  return 0;
}
