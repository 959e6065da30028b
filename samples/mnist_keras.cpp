// The book's first network (Deep Learning with Python, chapter 2) with tapeflow's Keras API,
// on the real Fashion-MNIST from Debian's dataset-fashion-mnist:
//
//     model = keras.Sequential([layers.Dense(512, activation="relu"),
//                               layers.Dense(10, activation="softmax")])
//     model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
//     model.fit(train_images, train_labels, epochs=5, batch_size=128)
//
// Prints the test accuracy, the median seconds per epoch and the peak resident memory (on a
// GPU also the device's peak, and first which device it is).
// Usage: mnist_keras [epochs (default 5)] [--device cpu|cuda|cuda:N (default cpu)]
#include <climits>
#include <cstdio>

#include "sample_util.hpp"
#include "tapeflow/tapeflow.hpp"

using namespace tapeflow;
using namespace tapeflow::layers;
using samples::EpochTimer;

int main(int argc, char** argv) {
  samples::Args args;
  if (!samples::parse_args(argc, argv, "mnist_keras [epochs (default 5)] [--device cpu|cuda|cuda:N]",
                           {{"epochs", 5, INT_MAX}}, args))
    return 2;
  const int epochs = static_cast<int>(args.counts[0]);
  try {
    if (!samples::print_device_status("mnist_keras", args.device)) return 1;
    const MnistData data = load_mnist();
    // [60000, 28, 28] -> [60000, 784]: a view, already float32 in [0, 1]
    const Tensor train_images = data.train_images.reshape({-1, 28 * 28});
    const Tensor test_images = data.test_images.reshape({-1, 28 * 28});

    Sequential model(Dense(512, "relu"), Dense(10, "softmax"));
    model.set_device(args.device);  // the weights live there; fit copies each batch over
    model.compile("rmsprop", "sparse_categorical_crossentropy", {"accuracy"});
    model.build({-1, 28 * 28});
    model.summary();

    auto timer = std::make_shared<EpochTimer>(args.device);
    FitOptions options;
    options.epochs = epochs;
    options.batch_size = 128;
    options.callbacks = {timer};
    model.fit(train_images, data.train_labels, options);

    const Logs test = model.evaluate(test_images, data.test_labels, 128);
    std::printf("test accuracy: %.4f\n", test.at("accuracy"));
    std::printf("test loss: %.4f\n", test.at("loss"));
    std::printf("seconds per epoch (median of %zu): %.3f\n", timer->seconds.size(), samples::median(timer->seconds));
    if (args.device.is_cuda()) {
      // fit reads the loss and metrics once per epoch, not after each batch
      std::printf("host waits for the device per epoch (median): %.0f\n", samples::median(timer->waits));
    }
    samples::print_peak_memory(args.device);
  } catch (const Error& e) {
    std::fprintf(stderr, "mnist_keras: %s\n", e.what());
    return 1;
  }
  return 0;
}
