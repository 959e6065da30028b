// The Model API: fit reaches a set accuracy, History, callbacks, progress output, weights on
// disk (bit-exact round trip, clear rejections), custom training steps, evaluate and predict.
#include <catch2/catch.hpp>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "layer_test_util.hpp"
#include "tapeflow/io.hpp"
#include "tapeflow/tapeflow.hpp"

using namespace tapeflow;
using namespace tapeflow::layers;
namespace fs = std::filesystem;

namespace {

// A fresh folder under the system's temp dir, removed with everything in it at the end.
class TempDir {
 public:
  TempDir() {
    const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    path_ = fs::temp_directory_path() /
            ("tapeflow_test_model_" + std::to_string(::getpid()) + "_" + std::to_string(stamp));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

// Everything written to stdout (the C stream) while alive.
class CaptureStdout {
 public:
  explicit CaptureStdout(std::string path) : path_(std::move(path)) {
    std::fflush(stdout);
    saved_ = ::dup(1);
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::close(fd);
  }
  ~CaptureStdout() { restore(); }
  std::string text() {
    restore();
    std::ifstream in(path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    std::fflush(stdout);
    ::dup2(saved_, 1);
    ::close(saved_);
    saved_ = -1;
  }
  std::string path_;
  int saved_ = -1;
};

struct Data {
  Tensor x, y;
};

// Three Gaussian blobs in 4-D around (2,0,0,0), (0,2,0,0), (0,0,2,0), stddev 0.5; labels cycle
// 0, 1, 2 so that every slice holds all classes. Separable up to a few stragglers.
Data blobs(std::int64_t n, std::uint64_t seed) {
  std::vector<std::int64_t> labels(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) labels[static_cast<std::size_t>(i)] = i % 3;
  const Tensor y = tensor<std::int64_t>(labels, {n});
  const Tensor centers = tensor<float>({2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2, 0}, {3, 4});
  Generator gen(seed);
  return {take(centers, y, 0) + normal({n, 4}, gen, 0, 0.5), y};
}

Sequential small_model(std::uint64_t seed = 0) {
  Sequential model(Dense(16, "relu"), Dense(3, "softmax"));
  model.set_seed(seed);
  return model;
}

FitOptions quiet(int epochs, std::int64_t batch_size = 32) {
  FitOptions o;
  o.epochs = epochs;
  o.batch_size = batch_size;
  o.verbose = 0;
  return o;
}

std::vector<Tensor> as_tensors(const std::vector<Variable>& vs) { return {vs.begin(), vs.end()}; }

bool same_bytes(const Tensor& a, const Tensor& b) {
  const Tensor ca = a.contiguous(), cb = b.contiguous();
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.nbytes()) == 0;
}

std::vector<float> values(const Tensor& t) { return t.to_vector<float>(); }

}  // namespace

TEST_CASE("fit learns a separable problem and History holds every epoch") {
  const Data train = blobs(600, 1), test = blobs(300, 2);
  Sequential model = small_model();
  model.compile(std::make_shared<optimizers::Adam>(0.01), "sparse_categorical_crossentropy", {"accuracy"});
  FitOptions o = quiet(8);
  o.validation_split = 0.2;
  const History h = model.fit(train.x, train.y, o);

  for (const char* key : {"loss", "accuracy", "val_loss", "val_accuracy"}) {
    INFO(key);
    REQUIRE(h.contains(key));
    CHECK(h[key].size() == 8);
  }
  CHECK(h.epoch == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7});
  CHECK(h["loss"].back() < h["loss"].front());
  CHECK(h["val_accuracy"].back() >= 0.95);
  CHECK_THROWS_AS(h["precision"], ValueError);
  CHECK(model.history().history == h.history);

  const Logs r = model.evaluate(test.x, test.y, 64, 0);
  CHECK(r.size() == 2);
  CHECK(r.at("accuracy") >= 0.95);
  CHECK(r.at("loss") < 0.3);
}

TEST_CASE("a 2000-example subset of Fashion-MNIST trains to a set accuracy") {
  if (!fs::exists(std::string(kFashionMnistDir) + "/train-images-idx3-ubyte.gz")) {
    WARN("Fashion-MNIST is not installed (dataset-fashion-mnist); skipped");
    CHECK(true);
    return;
  }
  const MnistData d = load_mnist();
  const Tensor x = d.train_images(Slice(0, 2000)).reshape({2000, 784});
  const Tensor y = d.train_labels(Slice(0, 2000));
  const Tensor x_test = d.test_images(Slice(0, 1000)).reshape({1000, 784});
  const Tensor y_test = d.test_labels(Slice(0, 1000));
  Sequential model(Dense(64, "relu"), Dense(10, "softmax"));
  model.compile("rmsprop", "sparse_categorical_crossentropy", {"accuracy"});
  model.fit(x, y, quiet(5, 32));
  const Logs r = model.evaluate(x_test, y_test, 128, 0);
  INFO("test accuracy " << r.at("accuracy"));
  CHECK(r.at("accuracy") >= 0.75);
}

TEST_CASE("fit with validation_data, no shuffling, and the same seeds gives the same weights") {
  const Data train = blobs(150, 3), val = blobs(60, 4);
  auto run = [&](bool shuffle) {
    Sequential model = small_model(9);
    model.compile("rmsprop", "sparse_categorical_crossentropy", {"accuracy"});
    FitOptions o = quiet(2, 16);
    o.validation_data = std::make_pair(val.x, val.y);
    o.shuffle = shuffle;
    o.seed = 5;
    const History h = model.fit(train.x, train.y, o);
    CHECK(h.contains("val_loss"));
    CHECK(h["val_accuracy"].size() == 2);
    return model;
  };
  const Sequential a = run(true), b = run(true), c = run(false);
  const auto wa = a.weights(), wb = b.weights(), wc = c.weights();
  REQUIRE(wa.size() == 4);
  for (std::size_t i = 0; i < wa.size(); ++i) CHECK(same_bytes(wa[i], wb[i]));
  CHECK_FALSE(same_bytes(wa[0], wc[0]));  // another order of the examples, other weights
}

TEST_CASE("fit checks its inputs and the compile step") {
  const Data d = blobs(30, 1);
  Sequential model = small_model();
  CHECK_THROWS_AS(model.fit(d.x, d.y, quiet(1)), ValueError);
  CHECK_THROWS_WITH(model.fit(d.x, d.y, quiet(1)), Catch::Contains("compile"));
  CHECK_THROWS_AS(model.compile("adagrad-ish", "mse"), ValueError);
  CHECK_THROWS_AS(model.compile("sgd", "focal_crossentropy"), ValueError);
  model.compile("sgd", "sparse_categorical_crossentropy", {"accuracy"});
  CHECK_THROWS_AS(model.fit(d.x, d.y(Slice(0, 20)), quiet(1)), ShapeError);
  FitOptions o = quiet(1);
  o.batch_size = 0;
  CHECK_THROWS_AS(model.fit(d.x, d.y, o), ValueError);
  o.batch_size = 8;
  o.validation_split = 1.5;
  CHECK_THROWS_AS(model.fit(d.x, d.y, o), ValueError);
  CHECK_THROWS_AS(model.compile("sgd", "mse", {"accuracy", "accuracy"}), ValueError);
}

TEST_CASE("evaluate weights each batch by its size; predict returns every row") {
  const Data d = blobs(50, 6);
  Sequential model = small_model();
  model.compile("adam", "sparse_categorical_crossentropy", {"accuracy"});
  model.fit(d.x, d.y, quiet(2, 8));

  const Tensor p = model.predict(d.x, 7);  // 7 batches of 7 and one of 1
  CHECK(p.shape() == Shape{50, 3});
  for (float s : values(sum(p, {1}))) CHECK(s == Approx(1).epsilon(1e-5));
  CHECK(values(p) == values(model(d.x)));

  const Logs r = model.evaluate(d.x, d.y, 7, 0);
  CHECK(r.at("loss") == Approx(model.compute_loss(d.y, p).item<double>()).epsilon(1e-5));
  const double acc = mean(equal(argmax(p, 1), d.y).astype(kFloat64)).item<double>();
  CHECK(r.at("accuracy") == Approx(acc));
  CHECK(model.predict(d.x(Slice(0, 3))).shape() == Shape{3, 3});
}

TEST_CASE("fit prints one line per epoch when stdout is not a terminal") {
  TempDir dir;
  const Data d = blobs(60, 1);
  Sequential model = small_model();
  model.compile("rmsprop", "sparse_categorical_crossentropy", {"accuracy"});
  FitOptions o = quiet(2, 16);
  o.verbose = 1;
  o.validation_split = 0.25;
  std::string out;
  {
    CaptureStdout capture(dir.file("stdout.txt"));
    model.fit(d.x, d.y, o);
    out = capture.text();
  }
  INFO(out);
  CHECK(out.find('\r') == std::string::npos);
  CHECK_THAT(out, Catch::StartsWith("Epoch 1/2\n3/3 - ") && Catch::Contains("\nEpoch 2/2\n3/3 - "));
  CHECK_THAT(out, Catch::Contains("/step - loss: ") && Catch::Contains(" - accuracy: ") &&
                      Catch::Contains(" - val_loss: ") && Catch::Contains(" - val_accuracy: "));
  std::size_t lines = 0;
  for (char c : out) lines += c == '\n';
  CHECK(lines == 4);

  {
    CaptureStdout capture(dir.file("evaluate.txt"));
    model.evaluate(d.x, d.y, 32);  // verbose 1 by default, as Keras: one line
    const std::string line = capture.text();
    CHECK_THAT(line, Catch::StartsWith("2/2 - ") && Catch::Contains(" - loss: ") && Catch::EndsWith("\n"));
    CHECK(std::count(line.begin(), line.end(), '\n') == 1);
  }

  o.verbose = 0;
  CaptureStdout silent(dir.file("silent.txt"));
  model.fit(d.x, d.y, o);
  model.evaluate(d.x, d.y, 32, 0);
  CHECK(silent.text().empty());
}

TEST_CASE("EarlyStopping follows Keras's patience rule") {
  Sequential model = small_model();
  model.build({-1, 4});
  callbacks::EarlyStoppingOptions opts;
  opts.monitor = "loss";
  opts.patience = 2;
  callbacks::EarlyStopping es(opts);
  es.set_model(&model);
  es.on_train_begin({});
  const std::vector<double> losses{1.0, 0.9, 0.95, 0.96, 0.97};
  int epoch = 0;
  for (; epoch < 5 && !model.stop_training; ++epoch) es.on_epoch_end(epoch, {{"loss", losses[epoch]}});
  // best 0.9 at epoch 1; epochs 2 and 3 do not improve: stop at 3
  CHECK(model.stop_training);
  CHECK(epoch == 4);
  CHECK(es.stopped_epoch() == 3);
  CHECK(es.best_epoch() == 1);
  CHECK(*es.best() == Approx(0.9));

  // "acc" in the name: larger is better; min_delta counts against improvements
  model.stop_training = false;
  opts.monitor = "val_accuracy";
  opts.patience = 1;
  opts.min_delta = 0.05;
  callbacks::EarlyStopping acc(opts);
  acc.set_model(&model);
  acc.on_train_begin({});
  acc.on_epoch_end(0, {{"val_accuracy", 0.5}});
  acc.on_epoch_end(1, {{"val_accuracy", 0.6}});   // +0.1: improves
  CHECK_FALSE(model.stop_training);
  acc.on_epoch_end(2, {{"val_accuracy", 0.64}});  // +0.04 < min_delta
  CHECK(model.stop_training);
  CHECK(acc.stopped_epoch() == 2);
}

TEST_CASE("EarlyStopping stops fit and restores the best weights") {
  const Data d = blobs(90, 2);
  Sequential model = small_model();
  model.compile("adam", "sparse_categorical_crossentropy", {"accuracy"});

  // records the weights at the end of each epoch
  struct Snapshots : callbacks::Callback {
    std::vector<std::vector<Tensor>> weights;
    void on_epoch_end(int, const Logs&) override {
      std::vector<Tensor> w;
      for (const auto& v : model().weights()) w.push_back(v.clone());
      weights.push_back(w);
    }
  };
  auto snapshots = std::make_shared<Snapshots>();
  callbacks::EarlyStoppingOptions opts;
  opts.monitor = "val_loss";
  opts.patience = 1;
  opts.min_delta = 1e9;  // nothing after the first epoch counts as an improvement
  opts.restore_best_weights = true;
  auto es = std::make_shared<callbacks::EarlyStopping>(opts);
  FitOptions o = quiet(10, 16);
  o.validation_split = 0.2;
  o.callbacks = {snapshots, es};
  const History h = model.fit(d.x, d.y, o);
  CHECK(h["loss"].size() == 2);
  CHECK(es->stopped_epoch() == 1);
  REQUIRE(snapshots->weights.size() == 2);
  const auto w = model.weights();
  for (std::size_t i = 0; i < w.size(); ++i) {
    CHECK(same_bytes(w[i], snapshots->weights[0][i]));       // epoch 0's weights are back
    CHECK_FALSE(same_bytes(w[i], snapshots->weights[1][i]));  // not the last epoch's
  }
}

TEST_CASE("CSVLogger writes a header and one row per epoch") {
  TempDir dir;
  const Data d = blobs(60, 1);
  Sequential model = small_model();
  model.compile("rmsprop", "sparse_categorical_crossentropy", {"accuracy"});
  FitOptions o = quiet(3, 16);
  o.validation_split = 0.2;
  const std::string path = dir.file("log.csv");
  o.callbacks = {std::make_shared<callbacks::CSVLogger>(path)};
  const History h = model.fit(d.x, d.y, o);

  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  REQUIRE(lines.size() == 4);
  CHECK(lines[0] == "epoch,accuracy,loss,val_accuracy,val_loss");
  for (int e = 0; e < 3; ++e) {
    CHECK_THAT(lines[1 + e], Catch::StartsWith(std::to_string(e) + ","));
    // the loss column holds the History's value
    std::stringstream row(lines[1 + e]);
    std::string field;
    std::vector<std::string> fields;
    while (std::getline(row, field, ',')) fields.push_back(field);
    REQUIRE(fields.size() == 5);
    CHECK(std::stod(fields[2]) == Approx(h["loss"][e]));
  }

  // append adds rows without a second header
  FitOptions again = quiet(1, 16);
  again.callbacks = {std::make_shared<callbacks::CSVLogger>(path, ',', true)};
  model.fit(d.x, d.y, again);
  std::ifstream in2(path);
  int count = 0;
  for (std::string line; std::getline(in2, line);) ++count;
  CHECK(count == 5);
}

TEST_CASE("ModelCheckpoint saves every epoch or only the best, with Keras's path fields") {
  TempDir dir;
  const Data d = blobs(60, 1);
  Sequential model = small_model();
  model.compile("rmsprop", "sparse_categorical_crossentropy", {"accuracy"});
  FitOptions o = quiet(2, 16);
  o.callbacks = {std::make_shared<callbacks::ModelCheckpoint>(dir.file("w_{epoch:02d}.safetensors"))};
  model.fit(d.x, d.y, o);
  CHECK(fs::exists(dir.file("w_01.safetensors")));
  CHECK(fs::exists(dir.file("w_02.safetensors")));

  callbacks::ModelCheckpointOptions best;
  best.monitor = "loss";
  best.save_best_only = true;
  auto cp = std::make_shared<callbacks::ModelCheckpoint>(dir.file("best.safetensors"), best);
  o.callbacks = {cp};
  const History h = model.fit(d.x, d.y, o);
  CHECK(fs::exists(dir.file("best.safetensors")));
  CHECK(*cp->best() == Approx(std::min(h["loss"][0], h["loss"][1])));
  CHECK(cp->format_path(4, {{"val_loss", 0.12345}}) == dir.file("best.safetensors"));
  callbacks::ModelCheckpoint fields("m-{epoch:03d}-{val_loss:.2f}-{other}.bin");
  CHECK(fields.format_path(4, {{"val_loss", 0.12345}}) == "m-005-0.12-{other}.bin");
}

TEST_CASE("save_weights / load_weights: a bit-exact round trip, and clear rejections") {
  TempDir dir;
  const Data d = blobs(60, 1);
  Sequential a(Dense(16, "relu"), BatchNormalization(), Dense(3, "softmax"));
  a.compile("adam", "sparse_categorical_crossentropy");
  a.fit(d.x, d.y, quiet(2, 16));
  const std::string path = dir.file("model.safetensors");
  a.save_weights(path);

  // the file holds every weight (trainable and not) under "<layer>/<weight>"
  const auto file = load_safetensors_map(path);
  CHECK(file.size() == 8);
  for (const char* key : {"dense/kernel", "dense/bias", "batch_normalization/gamma", "batch_normalization/beta",
                          "batch_normalization/moving_mean", "batch_normalization/moving_variance",
                          "dense_1/kernel", "dense_1/bias"}) {
    CHECK(file.count(key) == 1);
  }
  CHECK(load_safetensors_metadata(path).at("format") == "tapeflow");

  Sequential b(Dense(16, "relu"), BatchNormalization(), Dense(3, "softmax"));
  b.set_seed(123);
  CHECK_THROWS_AS(b.load_weights(path), ValueError);  // not built
  b.build({-1, 4});
  b.load_weights(path);
  const auto wa = a.weights(), wb = b.weights();
  REQUIRE(wa.size() == wb.size());
  for (std::size_t i = 0; i < wa.size(); ++i) CHECK(same_bytes(wa[i], wb[i]));
  CHECK(values(a.predict(d.x)) == values(b.predict(d.x)));

  // a layer of another width: a ShapeError naming the weight and both shapes; nothing changes
  Sequential wide(Dense(16, "relu"), BatchNormalization(), Dense(4, "softmax"));
  wide.build({-1, 4});
  const Tensor before = wide.weights()[0].clone();
  CHECK_THROWS_AS(wide.load_weights(path), ShapeError);
  CHECK_THROWS_WITH(wide.load_weights(path),
                    Catch::Contains("dense_1/kernel") && Catch::Contains("[16, 3]") && Catch::Contains("[16, 4]"));
  CHECK(same_bytes(wide.weights()[0], before));

  // other names: missing and unexpected weights are listed
  Sequential more(Dense(16, "relu"), BatchNormalization(), Dense(3, "softmax"), Dense(2));
  more.build({-1, 4});
  CHECK_THROWS_AS(more.load_weights(path), ValueError);
  CHECK_THROWS_WITH(more.load_weights(path), Catch::Contains("missing [dense_2/kernel, dense_2/bias]"));
  Sequential fewer(Dense(16, "relu"), Dense(3, "softmax"));
  fewer.build({-1, 4});
  CHECK_THROWS_WITH(fewer.load_weights(path),
                    Catch::Contains("unexpected [batch_normalization/beta") && Catch::Contains(path));

  // a damaged file is an IOError from the safetensors reader; a missing one too
  const std::string cut = dir.file("cut.safetensors");
  fs::copy_file(path, cut);
  fs::resize_file(cut, fs::file_size(cut) - 10);
  CHECK_THROWS_AS(b.load_weights(cut), IOError);
  CHECK_THROWS_AS(b.load_weights(dir.file("none.safetensors")), IOError);
}

TEST_CASE("a custom training loop with GradientTape and the optimizer, as in the book") {
  const Data d = blobs(120, 1);
  Sequential model = small_model(3);
  losses::SparseCategoricalCrossentropy loss_fn;
  optimizers::RMSprop optimizer(1e-2);
  metrics::SparseCategoricalAccuracy accuracy;
  double first = 0, last = 0;
  for (int epoch = 0; epoch < 5; ++epoch) {
    for (auto [xb, yb] : BatchIterator(d.x, d.y, 32)) {
      GradientTape tape;
      const Tensor predictions = model(xb, /*training=*/true);
      const Tensor loss = loss_fn(yb, predictions);
      const auto weights = model.trainable_weights();
      const auto gradients = tape.gradient(loss, as_tensors(weights));
      optimizer.apply_gradients(gradients, weights);
      accuracy.update_state(yb, predictions);
      if (epoch == 0 && first == 0) first = loss.item<double>();
      last = loss.item<double>();
    }
  }
  CHECK(last < first);
  CHECK(accuracy.result() > 0.8);
}

TEST_CASE("train_step drives a hand-written loop; a model overrides it as in the book") {
  const Data d = blobs(120, 1);
  {
    Sequential model = small_model();
    model.compile(std::make_shared<optimizers::RMSprop>(1e-2), "sparse_categorical_crossentropy", {"accuracy"});
    Logs logs;
    for (int epoch = 0; epoch < 5; ++epoch) {
      model.reset_metrics();
      for (auto [xb, yb] : BatchIterator(d.x, d.y, 32, {true, 1})) logs = model.train_step(xb, yb);
    }
    CHECK(logs.count("loss") == 1);
    CHECK(logs.at("accuracy") > 0.8);
    CHECK(model.optimizer().iterations() == 20);
  }

  // the book's custom fit: own loss function, own tracker, compile with just an optimizer
  class CustomModel : public Sequential {
   public:
    CustomModel() : Sequential(Dense(16, "relu"), Dense(3, "softmax")) {}
    std::shared_ptr<metrics::Mean> loss_tracker = std::make_shared<metrics::Mean>("loss");
    losses::SparseCategoricalCrossentropy loss_fn;
    int steps = 0;

    Logs train_step(const Tensor& x, const Tensor& y) override {
      ++steps;
      Tensor loss;
      std::vector<Variable> weights;
      std::vector<Tensor> gradients;
      {
        GradientTape tape;
        const Tensor predictions = (*this)(x, /*training=*/true);
        loss = loss_fn(y, predictions);
        weights = trainable_weights();
        gradients = tape.gradient(loss, as_tensors(weights));
      }
      optimizer().apply_gradients(gradients, weights);
      loss_tracker->update_state(loss);
      return {{"loss", loss_tracker->result()}};
    }
    std::vector<MetricPtr> metrics() const override { return {loss_tracker}; }
  };
  CustomModel model;
  model.compile(std::make_shared<optimizers::RMSprop>(1e-2));
  const History h = model.fit(d.x, d.y, quiet(3, 32));
  CHECK(model.steps == 12);
  CHECK(h["loss"].size() == 3);
  CHECK(h["loss"][2] < h["loss"][0]);
  CHECK_THROWS_AS(model.compute_loss(d.y, d.y), ValueError);  // compiled without a loss
}

TEST_CASE("a subclassed Model names and seeds its layers and trains with fit") {
  class TwoLayers : public Model {
   public:
    TwoLayers() : Model("two_layers") {}
    LayerPtr hidden = std::make_shared<Dense>(16, "relu");
    LayerPtr out = std::make_shared<Dense>(3, "softmax");
    Tensor call(const Tensor& x, bool training) override { return (*out)((*hidden)(x, training), training); }
    std::vector<LayerPtr> layers() const override { return {hidden, out}; }
  };
  const Data d = blobs(150, 4);
  TwoLayers model;
  model.compile(std::make_shared<optimizers::Adam>(1e-2), "sparse_categorical_crossentropy", {"accuracy"});
  const History h = model.fit(d.x, d.y, quiet(5, 16));
  CHECK(model.hidden->name() == "dense");
  CHECK(model.out->name() == "dense_1");
  CHECK(h["accuracy"].back() > 0.9);
  std::ostringstream os;
  model.summary(os);
  CHECK_THAT(os.str(), Catch::Contains("Model: \"two_layers\"") && Catch::Contains("dense_1 (Dense)") &&
                           Catch::Contains("Total params: 131"));
}

TEST_CASE("fit, evaluate and predict with a batch_size near INT64_MAX use one batch, as Keras") {
  Sequential model(Dense(1));
  model.compile("sgd", "mse");
  const Tensor x = ones({4, 2}), y = ones({4, 1});
  const History h = model.fit(x, y, quiet(1, std::numeric_limits<std::int64_t>::max()));
  CHECK(h["loss"].size() == 1);
  CHECK(model.optimizer().iterations() == 1);  // one step: one batch of all 4 examples
  const Logs r = model.evaluate(x, y, std::numeric_limits<std::int64_t>::max(), 0);
  CHECK(r.at("loss") == Approx(model.compute_loss(y, model(x)).item<double>()));
  CHECK(model.predict(x, std::numeric_limits<std::int64_t>::max() - 1).shape() == Shape{4, 1});
}

TEST_CASE("fit, evaluate and predict on no examples raise a ValueError naming the method") {
  Sequential model = small_model();
  model.compile("adam", "sparse_categorical_crossentropy", {"accuracy"});
  const Tensor x = zeros({0, 4}), y = zeros({0}, kInt64);
  CHECK_THROWS_AS(model.fit(x, y, quiet(1)), ValueError);
  CHECK_THROWS_WITH(model.fit(x, y, quiet(1)), "sequential: fit: x has no examples (shape [0, 4])");
  CHECK(model.history().history.empty());
  CHECK_FALSE(model.built());
  CHECK_THROWS_WITH(model.evaluate(x, y, 32, 0), "sequential: evaluate: x has no examples (shape [0, 4])");
  CHECK_THROWS_WITH(model.predict(x), "sequential: predict: x has no examples (shape [0, 4])");

  // an empty validation set is refused before the first epoch, not after it
  const Data d = blobs(30, 1);
  FitOptions o = quiet(1);
  o.validation_data = std::make_pair(x, y);
  CHECK_THROWS_WITH(model.fit(d.x, d.y, o), "sequential: fit: validation_data's x has no examples (shape [0, 4])");
  CHECK_FALSE(model.built());
  model.build({-1, 4});
  CHECK_THROWS_WITH(model.predict(x), Catch::Contains("predict: x has no examples"));
}

TEST_CASE("compile names 'loss' as no metric, and \"accuracy\" follows the first batch's shapes") {
  Sequential model = small_model();
  CHECK_THROWS_AS(model.compile("adam", "mse", {"loss"}), ValueError);
  CHECK_THROWS_WITH(model.compile("adam", "mse", {"loss"}),
                    "sequential: compile: 'loss' is not a metric name; the loss is always tracked as 'loss'");
  CHECK_THROWS_WITH(model.compile("adam", "mse", {"accuracy", "accuracy"}),
                    "sequential: compile: metric 'accuracy' is listed twice");

  // mse on softmax outputs with one-hot targets: Keras picks categorical_accuracy from the
  // shapes ([3, 3] and [3, 3]). With kernel 5 * I, row i of eye(3) has its largest output at i:
  // argmax matches every one-hot row (1.0), while exact equality would give 0.
  DenseOptions o;
  o.kernel_initializer = [](const Shape&, Generator&) { return eye(3) * 5.0; };
  Sequential onehot(Dense(3, "softmax", o));
  onehot.compile("rmsprop", "mse", {"accuracy"});
  const Logs r = onehot.evaluate(eye(3), eye(3), 32, 0);
  CHECK(r.at("accuracy") == Approx(1.0));
  const auto* acc = dynamic_cast<const metrics::AutoAccuracy*>(onehot.metrics()[1].get());
  REQUIRE(acc != nullptr);
  CHECK(std::string(acc->resolved()) == "categorical_accuracy");

  // one sigmoid output and binary_crossentropy: binary_accuracy. Kernel ones, bias 0: logits
  // 2, -2, 2, -2, so predictions 1, 0, 1, 0 against labels 1, 1, 1, 0: 3 of 4.
  DenseOptions b;
  b.kernel_initializer = initializers::ones;
  Sequential binary(Dense(1, "sigmoid", b));
  binary.compile("sgd", "binary_crossentropy", {"acc"});
  const Tensor xb = tensor<float>({1, 1, -1, -1, 2, 0, -3, 1}, {4, 2});
  const Logs rb = binary.evaluate(xb, tensor<float>({1, 1, 1, 0}, {4, 1}), 32, 0);
  CHECK(rb.at("acc") == Approx(0.75));
  CHECK(std::string(dynamic_cast<const metrics::AutoAccuracy&>(*binary.metrics()[1]).resolved()) ==
        "binary_accuracy");

  // int labels [n] with sparse_categorical_crossentropy still give sparse categorical accuracy
  model.compile("adam", "sparse_categorical_crossentropy", {"accuracy"});
  const Data d = blobs(30, 1);
  const Logs rs = model.evaluate(d.x, d.y, 8, 0);
  const double expected = mean(equal(argmax(model.predict(d.x), 1), d.y).astype(kFloat64)).item<double>();
  CHECK(rs.at("accuracy") == Approx(expected));
  CHECK(std::string(dynamic_cast<const metrics::AutoAccuracy&>(*model.metrics()[1]).resolved()) ==
        "sparse_categorical_accuracy");
}

TEST_CASE("ModelCheckpoint with save_best_only skips a NaN epoch, as Keras") {
  TempDir dir;
  Sequential model(Dense(1));
  model.compile("sgd", "mse");
  model.build({-1, 1});
  // Keras starts from best = +inf (mode min): NaN < inf is false, so epoch 1 is skipped and
  // epoch 2 (1.0) is the first save; 0.5 improves on it; 0.7 does not.
  callbacks::ModelCheckpointOptions co;
  co.save_best_only = true;
  co.monitor = "loss";
  callbacks::ModelCheckpoint cp(dir.file("e{epoch}.st"), co);
  cp.set_model(&model);
  cp.on_train_begin({});
  const double nan = std::numeric_limits<double>::quiet_NaN();
  cp.on_epoch_end(0, {{"loss", nan}});
  CHECK_FALSE(cp.best().has_value());
  cp.on_epoch_end(1, {{"loss", 1.0}});
  cp.on_epoch_end(2, {{"loss", 0.5}});
  cp.on_epoch_end(3, {{"loss", 0.7}});
  CHECK_FALSE(fs::exists(dir.file("e1.st")));
  CHECK(fs::exists(dir.file("e2.st")));
  CHECK(fs::exists(dir.file("e3.st")));
  CHECK_FALSE(fs::exists(dir.file("e4.st")));
  REQUIRE(cp.best().has_value());
  CHECK(*cp.best() == 0.5);

  // mode max starts from -inf: NaN is skipped there too
  co.monitor = "accuracy";
  callbacks::ModelCheckpoint up(dir.file("a{epoch}.st"), co);
  up.set_model(&model);
  up.on_train_begin({});
  up.on_epoch_end(0, {{"accuracy", nan}});
  up.on_epoch_end(1, {{"accuracy", 0.3}});
  CHECK_FALSE(fs::exists(dir.file("a1.st")));
  CHECK(fs::exists(dir.file("a2.st")));
  CHECK(*up.best() == 0.3);
}

TEST_CASE("ModelCheckpoint formats its path as Python's str.format, and rejects a bad one when made") {
  // Python: "{epoch:.4f}".format(epoch=1) == "1.0000"; "{{epoch}}".format(epoch=1) == "{epoch}"
  callbacks::ModelCheckpoint as_float("w{epoch:.4f}.st");
  CHECK(as_float.format_path(0, {}) == "w1.0000.st");
  CHECK(callbacks::ModelCheckpoint("w{{epoch}}-{epoch}.st").format_path(2, {}) == "w{epoch}-3.st");
  CHECK(callbacks::ModelCheckpoint("w}}{{.st").format_path(0, {}) == "w}{.st");

  // Python: "{loss:02d}".format(loss=0.5) is a ValueError (no 'd' for a float): here when the
  // callback is made, as a ValueError naming ModelCheckpoint and the field
  CHECK_THROWS_AS(callbacks::ModelCheckpoint("w{loss:02d}.st"), ValueError);
  CHECK_THROWS_WITH(callbacks::ModelCheckpoint("w{loss:02d}.st"),
                    Catch::StartsWith("ModelCheckpoint: cannot format the path 'w{loss:02d}.st': field '{loss:02d}'"));
  CHECK_THROWS_WITH(callbacks::ModelCheckpoint("w{epoch:{.st"), Catch::Contains("is not closed"));
  CHECK_THROWS_WITH(callbacks::ModelCheckpoint("w{epoch:>{w}}.st"), Catch::Contains("nested field"));
  CHECK_THROWS_WITH(callbacks::ModelCheckpoint("w}.st"), Catch::Contains("single '}'"));

  // through fit: the file is named as Python would name it
  TempDir dir;
  const Data d = blobs(30, 1);
  Sequential model = small_model();
  model.compile("sgd", "sparse_categorical_crossentropy");
  FitOptions o = quiet(1);
  o.callbacks = {std::make_shared<callbacks::ModelCheckpoint>(dir.file("w{epoch:.2f}-{loss:.1e}.st"))};
  const History h = model.fit(d.x, d.y, o);
  char name[64];
  std::snprintf(name, sizeof name, "w1.00-%.1e.st", h["loss"][0]);  // Python's .1e is C's %.1e
  CHECK(fs::exists(dir.file(name)));
}

TEST_CASE("load_weights refuses duplicate weight names as save_weights does") {
  // two layers both named "d": their weights share the names "d/kernel" and "d/bias"
  class Twin : public Model {
   public:
    Twin() : Model("twin") {}
    std::shared_ptr<Dense> a = std::make_shared<Dense>(2, Activation::Linear, named("d"));
    std::shared_ptr<Dense> b = std::make_shared<Dense>(2, Activation::Linear, named("d"));
    Tensor call(const Tensor& x, bool training) override { return (*b)((*a)(x, training), training); }
    std::vector<LayerPtr> layers() const override { return {a, b}; }

   private:
    static DenseOptions named(const std::string& name) {
      DenseOptions o;
      o.name = name;
      return o;
    }
  };
  TempDir dir;
  Twin twin;
  twin.build({-1, 2});
  const std::string path = dir.file("twin.safetensors");
  CHECK_THROWS_WITH(twin.save_weights(path),
                    "twin: save_weights: two weights are named 'd/kernel'; give the layers unique names");
  // a file with one "d/kernel" and one "d/bias" would fit both layers: refused, nothing loaded
  save_safetensors(path, {{"d/kernel", ones({2, 2})}, {"d/bias", ones({2})}});
  const Tensor a_before = twin.a->kernel().clone(), b_before = twin.b->kernel().clone();
  CHECK_THROWS_AS(twin.load_weights(path), ValueError);
  CHECK_THROWS_WITH(twin.load_weights(path),
                    "twin: load_weights: two weights are named 'd/kernel'; give the layers unique names");
  CHECK(same_bytes(twin.a->kernel(), a_before));
  CHECK(same_bytes(twin.b->kernel(), b_before));
}

TEST_CASE("fit goes on across calls: new shuffles each call, initial_epoch resumes a run exactly") {
  const Data d = blobs(96, 11);
  FitOptions o = quiet(4, 16);
  o.seed = 3;
  // one run of 4 epochs
  Sequential whole = small_model(2);
  whole.compile(std::make_shared<optimizers::Adam>(1e-2), "sparse_categorical_crossentropy");
  const History hw = whole.fit(d.x, d.y, o);
  // the same run in two calls, the second resuming at epoch 2, as Keras's initial_epoch
  Sequential split = small_model(2);
  split.compile(std::make_shared<optimizers::Adam>(1e-2), "sparse_categorical_crossentropy");
  o.epochs = 2;
  split.fit(d.x, d.y, o);
  o.initial_epoch = 2;
  o.epochs = 4;
  const History h2 = split.fit(d.x, d.y, o);
  CHECK(h2.epoch == std::vector<int>{2, 3});
  CHECK(h2["loss"] == std::vector<double>(hw["loss"].begin() + 2, hw["loss"].end()));
  const auto ww = whole.weights(), ws = split.weights();
  for (std::size_t i = 0; i < ww.size(); ++i) CHECK(same_bytes(ww[i], ws[i]));
  // initial_epoch >= epochs trains nothing; a negative one raises
  o.initial_epoch = 4;
  CHECK(split.fit(d.x, d.y, o).epoch.empty());
  o.initial_epoch = -1;
  CHECK_THROWS_AS(split.fit(d.x, d.y, o), ValueError);

  // fit(epochs=1) called repeatedly: each call draws a new order (the first rows of each
  // call's first batch differ), as Keras
  class Recorder : public Sequential {
   public:
    Recorder() : Sequential(Dense(3, "softmax")) {}
    std::vector<std::vector<float>> firsts;
    Logs train_step(const Tensor& x, const Tensor& y) override {
      if (firsts.size() < 3) firsts.push_back(x(0).to_vector<float>());
      return Sequential::train_step(x, y);
    }
  };
  Recorder rec;
  rec.compile("sgd", "sparse_categorical_crossentropy");
  FitOptions one = quiet(1, 96);  // one batch: the whole epoch's order
  for (int call = 0; call < 3; ++call) rec.fit(d.x, d.y, one);
  REQUIRE(rec.firsts.size() == 3);
  CHECK(rec.firsts[0] != rec.firsts[1]);
  CHECK(rec.firsts[1] != rec.firsts[2]);
}

TEST_CASE("fit checks its data before training and gives each train_step its own batch") {
  const Data d = blobs(60, 5);
  Sequential model = small_model(1);
  model.compile("sgd", "sparse_categorical_crossentropy");
  model.build({-1, 4});
  const std::vector<float> before = values(model.weights()[0]);
  // validation_data of mismatched lengths: refused before any step (the weights are unchanged)
  FitOptions o = quiet(1, 8);
  o.validation_data = std::make_pair(d.x(Slice(0, 10)), d.y(Slice(0, 9)));
  CHECK_THROWS_WITH(model.fit(d.x, d.y, o),
                    "sequential: fit: validation_data's x and y must have as many examples: x [10, 4], y [9]");
  CHECK_THROWS_WITH(model.fit(d.x, d.y(Slice(0, 59)), quiet(1)),
                    "sequential: fit: x and y must have as many examples: x [60, 4], y [59]");
  CHECK_THROWS_AS(model.evaluate(d.x, d.y(Slice(0, 59)), 32, 0), ShapeError);
  CHECK(values(model.weights()[0]) == before);
  // a null callback is a ValueError, not a crash
  FitOptions nul = quiet(1);
  nul.callbacks = {nullptr};
  CHECK_THROWS_WITH(model.fit(d.x, d.y, nul), "sequential: fit: callbacks[0] is null");
  CHECK(values(model.weights()[0]) == before);
  // no labels: the default train_step and test_step say what is missing
  CHECK_THROWS_WITH(model.fit(d.x, Tensor(), quiet(1)), Catch::Contains("train_step: y is undefined"));
  CHECK_THROWS_WITH(model.evaluate(d.x, Tensor(), 32, 0), Catch::Contains("test_step: y is undefined"));

  // a custom train_step that augments its batch in place and needs no labels (an autoencoder's
  // loop): the caller's x is unchanged, shuffled or not
  class Augmenting : public Sequential {
   public:
    Augmenting() : Sequential(Dense(4)) {}
    int steps = 0;
    Logs train_step(const Tensor& x, const Tensor& y) override {
      CHECK_FALSE(y.defined());
      Tensor batch = x;
      batch.mul_(2.0);
      ++steps;
      return {};
    }
  };
  for (bool shuffle : {false, true}) {
    INFO("shuffle " << shuffle);
    Augmenting aug;
    aug.compile("sgd");
    const Tensor x = d.x.clone();
    FitOptions fo = quiet(3, 16);
    fo.shuffle = shuffle;
    aug.fit(x, Tensor(), fo);
    CHECK(aug.steps == 3 * 4);
    CHECK(same_bytes(x, d.x));
  }
}

TEST_CASE("regression as in the book's chapter 4: mse loss, \"mae\" metric, History's val_mae") {
  // y = 2 x0 - x1 + 0.5 over 64 examples; a linear model fits it
  Generator gen(9);
  const Tensor x = normal({64, 2}, gen);
  const Tensor y = (x(all, Slice(0, 1)) * 2.0 - x(all, Slice(1, 2)) + 0.5);
  Sequential model(Dense(1));
  model.set_seed(4);
  model.compile(std::make_shared<optimizers::Adam>(0.1), "mse", {"mae"});
  FitOptions o = quiet(30, 16);
  o.validation_split = 0.25;
  const History h = model.fit(x, y, o);
  REQUIRE(h.contains("mae"));
  REQUIRE(h.contains("val_mae"));
  CHECK(h["mae"].back() < h["mae"].front());
  CHECK(h["val_mae"].back() < 0.2);
  // evaluate's mae is the mean absolute error of predict, worked out here
  const Logs r = model.evaluate(x, y, 16, 0);
  const double want = mean(abs(model.predict(x) - y)).item<float>();
  CHECK(r.at("mae") == Approx(want).epsilon(1e-5));
}

TEST_CASE("fit's sample_weight and class_weight weigh each example's loss as Keras does", "[model][weights]") {
  const std::int64_t n = 8;
  std::vector<float> xv(n * 3), yv(n);
  std::vector<std::int64_t> cls(n);
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = 0; j < 3; ++j) xv[std::size_t(i * 3 + j)] = std::sin(float(i * 3 + j));
    yv[std::size_t(i)] = std::cos(float(i));
    cls[std::size_t(i)] = i % 2;
  }
  const Tensor x = tensor(xv, {n, 3}), y = tensor(yv, {n, 1}), labels = tensor(cls, {n});
  auto make = [] {
    auto m = std::make_unique<Sequential>(Dense(1));
    m->set_seed(3);
    m->compile(std::make_shared<optimizers::SGD>(0.1), "mean_squared_error");
    m->build({-1, 3});
    return m;
  };
  FitOptions o;
  o.epochs = 1;
  o.batch_size = n;
  o.shuffle = false;
  o.verbose = 0;
  // the logged loss is sum(loss * w) / n at the starting weights (one batch)
  std::vector<float> wv(n);
  for (std::int64_t i = 0; i < n; ++i) wv[std::size_t(i)] = i % 2 == 0 ? 2.0f : 0.0f;
  const Tensor w = tensor(wv, {n});
  auto weighted = make();
  const auto pred = weighted->predict(x);
  const auto pv = pred.to_vector<float>();
  double expected = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const double e = double(pv[std::size_t(i)]) - double(yv[std::size_t(i)]);
    expected += e * e * double(wv[std::size_t(i)]) / double(n);
  }
  o.sample_weight = w;
  const History h = weighted->fit(x, y, o);
  CHECK(h["loss"][0] == Approx(expected).epsilon(1e-6));
  // weight 2 on the even examples and 0 on the odd = the even examples alone, unweighted
  auto evens = make();
  FitOptions plain = o;
  plain.sample_weight = Tensor();
  evens->fit(x(Slice(0, n, 2)), y(Slice(0, n, 2)), plain);
  const auto a = weighted->weights()[0].to_vector<float>(), b = evens->weights()[0].to_vector<float>();
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i] == Approx(b[i]).epsilon(1e-5));
  // class_weight {0: 2, 1: 0} over labels i % 2 is the same weighting
  auto by_class = make();
  FitOptions co = plain;
  co.class_weight = {{0, 2.0}, {1, 0.0}};
  Sequential two(Dense(2, "softmax"));
  two.set_seed(1);
  two.compile(std::make_shared<optimizers::SGD>(0.1), "sparse_categorical_crossentropy");
  Sequential two_w(Dense(2, "softmax"));
  two_w.set_seed(1);
  two_w.compile(std::make_shared<optimizers::SGD>(0.1), "sparse_categorical_crossentropy");
  FitOptions so = plain;
  so.sample_weight = w;
  const History hc = two.fit(x, labels, co), hs = two_w.fit(x, labels, so);
  CHECK(hc["loss"] == hs["loss"]);
  CHECK(two.weights()[0].to_vector<float>() == two_w.weights()[0].to_vector<float>());
  // one-hot labels pick the class by argmax
  Sequential onehot(Dense(2, "softmax"));
  onehot.set_seed(1);
  onehot.compile(std::make_shared<optimizers::SGD>(0.1), "categorical_crossentropy");
  CHECK(onehot.fit(x, one_hot(labels, 2), co)["loss"] == hc["loss"]);
  // errors
  FitOptions both = co;
  both.sample_weight = w;
  CHECK_THROWS_WITH(by_class->fit(x, y, both), Catch::Matchers::Contains("give sample_weight or class_weight, not both"));
  FitOptions short_w = plain;
  short_w.sample_weight = w(Slice(0, 5));
  CHECK_THROWS_WITH(by_class->fit(x, y, short_w),
                    Catch::Matchers::Contains("sequential: fit: sample_weight must be [n] = [8], got [5]"));
  CHECK_THROWS_AS(by_class->fit(x, y, short_w), ShapeError);
}

TEST_CASE("weighted_metrics, evaluate's sample_weight and the validation weights, as Keras", "[model][weights]") {
  const std::int64_t n = 12;
  const Tensor x = lt::irregular({n, 4});
  std::vector<std::int64_t> cls(n);
  std::vector<double> wv(n);
  for (std::int64_t i = 0; i < n; ++i) {
    cls[std::size_t(i)] = (i * 5) % 3;
    wv[std::size_t(i)] = double(i % 4);
  }
  const Tensor y = tensor(cls, {n}), w = tensor(wv, {n});
  Sequential model(Dense(3, "softmax"));
  model.set_seed(5);
  model.compile(std::make_shared<optimizers::SGD>(0.1), "sparse_categorical_crossentropy", {"accuracy"}, {"accuracy"});
  // by hand from the predictions: Keras's sum(loss * w) / n, the plain and the weighted accuracy
  const Tensor p = model.predict(x);
  const auto l = lt::dvals(losses::sparse_categorical_crossentropy(y, p));
  const auto hit = lt::dvals(equal(argmax(p, -1), y));
  double loss = 0, acc = 0, wacc = 0, wsum = 0;
  for (std::size_t i = 0; i < std::size_t(n); ++i) {
    loss += l[i] * wv[i] / double(n);
    acc += hit[i] / double(n);
    wacc += hit[i] * wv[i];
    wsum += wv[i];
  }
  const Logs logs = model.evaluate(x, y, 5, 0, w);  // 3 batches of 5, 5, 2
  CHECK(logs.at("loss") == Approx(loss).epsilon(1e-5));
  CHECK(logs.at("accuracy") == Approx(acc));
  CHECK(logs.at("weighted_accuracy") == Approx(wacc / wsum));
  const Logs plain = model.evaluate(x, y, 5, 0);
  CHECK(plain.at("weighted_accuracy") == Approx(acc));  // no weights: the plain mean
  // a weighted metric of a name no plain metric has keeps its name
  Sequential only(Dense(3, "softmax"));
  only.set_seed(5);
  only.compile("sgd", "sparse_categorical_crossentropy", {}, {"accuracy"});
  CHECK(only.evaluate(x, y, n, 0, w).at("accuracy") == Approx(wacc / wsum));
  // the validation loss: validation_sample_weight, or validation_split's share of sample_weight
  FitOptions o;
  o.batch_size = 4;
  o.verbose = 0;
  o.shuffle = false;
  o.validation_data = std::make_pair(x, y);
  o.validation_sample_weight = w;
  const History h = model.fit(x, y, o);
  const Logs after = model.evaluate(x, y, 4, 0, w);
  CHECK(h["val_loss"][0] == Approx(after.at("loss")));
  CHECK(h["val_weighted_accuracy"][0] == Approx(after.at("weighted_accuracy")));
  FitOptions split;
  split.batch_size = 4;
  split.verbose = 0;
  split.shuffle = false;
  split.validation_split = 0.25;  // the last 3 rows
  split.sample_weight = w;
  const History hs = model.fit(x, y, split);
  CHECK(hs["val_loss"][0] == Approx(model.evaluate(x(Slice(9, n)), y(Slice(9, n)), 4, 0, w(Slice(9, n))).at("loss")));
  // several outputs: "<output>_weighted_<metric>" beside "<output>_<metric>"
  KerasTensor in = Input({4});
  auto da = std::make_shared<Dense>(1), db = std::make_shared<Dense>(1);
  da->set_name("a");
  db->set_name("b");
  Functional two({in}, {(*da)(in), (*db)(in)});
  two.compile("sgd", {OutputLoss("mse", {"mae"}, 1.0, {"mae"}), OutputLoss("mse", {}, 0.5, {"mae"})});
  const Tensor ya = lt::irregular({n, 1}), yb = lt::irregular({n, 1}, 0, 1);
  const Logs tl = two.evaluate({x}, {ya, yb}, n, 0, w);
  CHECK(tl.count("a_mae") == 1);
  CHECK(tl.count("a_weighted_mae") == 1);
  CHECK(tl.count("b_mae") == 1);  // weighted, under its own name
  const auto pb = lt::dvals(two(std::vector<Tensor>{x})[1]);
  const auto ybv = lt::dvals(yb);
  double wmae = 0;
  for (std::size_t i = 0; i < std::size_t(n); ++i) wmae += std::abs(pb[i] - ybv[i]) * wv[i];
  CHECK(tl.at("b_mae") == Approx(wmae / wsum));
  // errors
  CHECK_THROWS_WITH(model.evaluate(x, y, 4, 0, w(Slice(0, 5))),
                    Catch::Matchers::Contains("sequential: evaluate: sample_weight must be [n] = [12], got [5]"));
  CHECK_THROWS_WITH(only.compile("sgd", "mse", {}, {"mae", "mae"}),
                    Catch::Matchers::Contains("weighted metric 'mae' is listed twice"));
}

// ---------------------------------------------------------------- Dataset: Keras's model.fit(py_dataset)

namespace {

// A Dataset of a function of the batch index, n batches.
class Batches : public Dataset {
 public:
  Batches(std::int64_t n, std::function<DataBatch(std::int64_t)> make) : n_(n), make_(std::move(make)) {}
  std::int64_t num_batches() const override { return n_; }
  DataBatch get_batch(std::int64_t index) override { return make_(index); }

 private:
  std::int64_t n_;
  std::function<DataBatch(std::int64_t)> make_;
};

// Passes everything to `inner` and writes down each call: "epoch 3" (set_epoch), the batch
// indices asked for, "end" (on_epoch_end).
class Recording : public Dataset {
 public:
  explicit Recording(Dataset& inner) : inner_(inner) {}
  std::int64_t num_batches() const override { return inner_.num_batches(); }
  DataBatch get_batch(std::int64_t index) override {
    log_ += (log_.empty() ? "" : " ") + std::to_string(index);
    return inner_.get_batch(index);
  }
  void on_epoch_end() override {
    log_ += (log_.empty() ? "" : " ") + std::string("end");
    inner_.on_epoch_end();
  }
  void set_epoch(std::int64_t epoch) override {
    log_ += (log_.empty() ? "" : " ") + ("epoch " + std::to_string(epoch));
    inner_.set_epoch(epoch);
  }
  // the calls since the last take()
  std::string take() { return std::exchange(log_, std::string()); }

 private:
  Dataset& inner_;
  std::string log_;
};

// Made on the fly from the index, as a PyDataset reading files: batch i is 8 fresh blobs of
// seed i, augmented with noise that changes every epoch (on_epoch_end counts them).
class OnTheFly : public Dataset {
 public:
  explicit OnTheFly(std::int64_t batches) : batches_(batches) {}
  std::int64_t num_batches() const override { return batches_; }
  DataBatch get_batch(std::int64_t index) override {
    const Data d = blobs(8, 100 + static_cast<std::uint64_t>(index));
    Generator noise(1000 * static_cast<std::uint64_t>(epochs_ended) + static_cast<std::uint64_t>(index));
    return {{d.x + normal({8, 4}, noise, 0, 0.05)}, {d.y}, Tensor()};
  }
  void on_epoch_end() override { ++epochs_ended; }
  int epochs_ended = 0;

 private:
  std::int64_t batches_;
};

void check_same_weights(const Model& a, const Model& b) {
  const auto wa = a.weights(), wb = b.weights();
  REQUIRE(wa.size() == wb.size());
  for (std::size_t i = 0; i < wa.size(); ++i) CHECK(same_bytes(wa[i].to(Device::cpu()), wb[i].to(Device::cpu())));
}

}  // namespace

TEST_CASE("fit on an ArrayDataset trains bit-identically to fit on the arrays, shuffled or not", "[dataset]") {
  const Data d = blobs(90, 4), v = blobs(30, 5);
  std::vector<Device> devices{Device::cpu()};
  if (cuda::is_available()) devices.push_back(Device::cuda(0));
  for (const Device& device : devices) {
    for (bool shuffle : {false, true}) {
      INFO("shuffle " << shuffle << " on " << device.str());
      FitOptions o = quiet(3, 16);
      o.shuffle = shuffle;
      o.seed = 9;
      o.validation_data = std::make_pair(v.x, v.y);
      Sequential a = small_model(3), b = small_model(3);
      for (Sequential* m : {&a, &b}) {
        m->set_device(device);
        m->compile(std::make_shared<optimizers::Adam>(1e-2), "sparse_categorical_crossentropy", {"accuracy"});
      }
      // the Dataset's own batching and order; FitOptions' batch_size, shuffle and seed do not apply
      ArrayDataset train(d.x, d.y, 16, {shuffle, 9}), val(v.x, v.y, 16);
      FitOptions od = quiet(3, 5);
      od.shuffle = !shuffle;
      od.validation_dataset = &val;
      for (int call = 0; call < 2; ++call) {  // a second fit() goes on with new orders
        const History ha = a.fit(d.x, d.y, o), hb = b.fit(train, od);
        CHECK(ha.history == hb.history);
        CHECK(ha.epoch == hb.epoch);
        check_same_weights(a, b);
      }
      CHECK(b.weights()[0].device() == device);
      // evaluate and predict on a Dataset equal the array versions
      CHECK(a.evaluate(v.x, v.y, 16, 0) == b.evaluate(val, 0, 0));
      const std::vector<Tensor> p = b.predict(val);
      REQUIRE(p.size() == 1);
      CHECK(same_bytes(p[0].to(Device::cpu()), a.predict(v.x, 16).to(Device::cpu())));
    }
  }
}

TEST_CASE("a Dataset made on the fly trains; fit, evaluate and predict ask for its batches as Keras", "[dataset]") {
  OnTheFly made(5);
  Recording data(made);
  Sequential model = small_model(1);
  model.compile(std::make_shared<optimizers::Adam>(1e-2), "sparse_categorical_crossentropy", {"accuracy"});
  const History h = model.fit(data, quiet(4));
  CHECK(made.epochs_ended == 4);  // on_epoch_end once per epoch
  CHECK(data.take() == "epoch 0 0 1 2 3 4 end epoch 1 0 1 2 3 4 end epoch 2 0 1 2 3 4 end epoch 3 0 1 2 3 4 end");
  CHECK(h["loss"].back() < h["loss"].front());
  CHECK(h["accuracy"].back() > 0.9);

  // Keras 3's steps_per_epoch on a finite dataset: the next epoch goes on where the last
  // stopped; an epoch that reaches the end of the pass ends early and the next starts again
  FitOptions three = quiet(3);
  three.steps_per_epoch = 3;
  const History h3 = model.fit(data, three);
  CHECK(data.take() == "epoch 4 0 1 2 end 3 4 end epoch 6 0 1 2 end");
  CHECK(h3.epoch == std::vector<int>{0, 1, 2});
  three.steps_per_epoch = 7;  // more than a pass: each epoch is one pass
  three.epochs = 2;
  model.fit(data, three);
  CHECK(data.take() == "epoch 7 0 1 2 3 4 end epoch 8 0 1 2 3 4 end");

  // evaluate and predict: batches 0 .. steps - 1, then on_epoch_end
  model.evaluate(data, 2, 0);
  CHECK(data.take() == "0 1 end");
  model.evaluate(data, 9, 0);
  CHECK(data.take() == "0 1 2 3 4 end");
  CHECK(model.predict(data, 2)[0].shape() == Shape{16, 3});
  CHECK(data.take() == "0 1 end");

  // an unbuilt model with callbacks is built on the first batch, which then trains: no batch
  // is asked for twice
  Sequential fresh = small_model(2);
  fresh.compile("sgd", "sparse_categorical_crossentropy");
  FitOptions with_callback = quiet(1);
  int batches_seen = 0;
  auto counter = std::make_shared<callbacks::LambdaCallback>();
  counter->train_batch_end = [&](std::int64_t, const Logs&) { ++batches_seen; };
  with_callback.callbacks = {counter};
  fresh.fit(data, with_callback);
  CHECK(data.take() == "epoch 0 0 1 2 3 4 end");
  CHECK(batches_seen == 5);
}

TEST_CASE("a generator trains with steps_per_epoch; evaluate and predict need steps", "[dataset]") {
  const Data d = blobs(64, 6);
  std::int64_t calls = 0;
  GeneratorDataset gen([&] {
    const std::int64_t start = (calls++ % 8) * 8;  // endless: the 8 batches of d, round and round
    return DataBatch{{d.x(Slice(start, start + 8))}, {d.y(Slice(start, start + 8))}, Tensor()};
  });
  CHECK(gen.num_batches() == Dataset::kUnknown);
  Sequential model = small_model(4);
  model.compile(std::make_shared<optimizers::Adam>(1e-2), "sparse_categorical_crossentropy");
  FitOptions o = quiet(3);
  o.steps_per_epoch = 4;
  const History h = model.fit(gen, o);
  CHECK(calls == 12);  // the batches go on across epochs
  CHECK(h.epoch == std::vector<int>{0, 1, 2});
  CHECK_THROWS_WITH(model.fit(gen, quiet(1)), "sequential: fit: the dataset has no length (num_batches() is "
                                              "Dataset::kUnknown, as a generator's); give steps_per_epoch");
  CHECK_THROWS_WITH(model.evaluate(gen, 0, 0), Catch::Contains("sequential: evaluate: the dataset has no length"));
  CHECK_THROWS_WITH(model.predict(gen), Catch::Contains("sequential: predict: the dataset has no length"));
  calls = 0;
  const Logs logs = model.evaluate(gen, 8, 0);  // all of d, as batches of 8
  CHECK(calls == 8);
  CHECK(logs.at("loss") == Approx(model.evaluate(d.x, d.y, 8, 0).at("loss")));
  CHECK(model.predict(gen, 2)[0].shape() == Shape{16, 3});
  // a generator for validation needs validation_steps
  o.validation_dataset = &gen;
  CHECK_THROWS_WITH(model.fit(gen, o), Catch::Contains("sequential: fit: the dataset has no length (num_batches() is "
                                                       "Dataset::kUnknown, as a generator's); give validation_steps"));
  o.validation_steps = 2;
  calls = 0;
  CHECK(model.fit(gen, o).contains("val_loss"));
  CHECK(calls == 3 * (4 + 2));
}

TEST_CASE("validation from a Dataset, and sample and class weights from its batches, as Keras", "[dataset]") {
  const Data d = blobs(48, 7), v = blobs(24, 8);
  Sequential model = small_model(5);
  model.compile("sgd", "sparse_categorical_crossentropy", {"accuracy"});
  ArrayDataset train(d.x, d.y, 16), val_arrays(v.x, v.y, 8);
  Recording val(val_arrays);
  FitOptions o = quiet(2);
  o.validation_dataset = &val;
  o.validation_steps = 2;  // each validation run starts at batch 0
  const History h = model.fit(train, o);
  CHECK(val.take() == "0 1 end 0 1 end");
  CHECK(h["val_loss"].back() == model.evaluate(val, 2, 0).at("loss"));
  CHECK(h.contains("val_accuracy"));

  // a batch's sample weights: the loss is sum(loss * w) / batch (Keras)
  const std::int64_t n = 12;
  const Tensor x = lt::irregular({n, 4}), y = lt::irregular({n, 1}, 0, 1), w = lt::irregular({n}, 0.1, 1);
  Sequential reg(Dense(1));
  reg.set_seed(3);
  reg.compile("sgd", "mse");
  ArrayDataset weighted(x, y, n, {}, w);
  const double loss = reg.evaluate(weighted, 0, 0).at("loss");
  const auto pred = lt::dvals(reg.predict(x, n)), yv = lt::dvals(y), wv = lt::dvals(w);
  double sum = 0;
  for (std::size_t i = 0; i < std::size_t(n); ++i) sum += (pred[i] - yv[i]) * (pred[i] - yv[i]) * wv[i];
  CHECK(loss == Approx(sum / double(n)));
  // fit with the batches' weights, or with class_weight on a Dataset, equals fit on the arrays
  Sequential by_arrays(Dense(1)), by_dataset(Dense(1));
  for (Sequential* m : {&by_arrays, &by_dataset}) {
    m->set_seed(3);
    m->compile("sgd", "mse");
  }
  FitOptions fo = quiet(2, 4);
  fo.shuffle = false;
  fo.sample_weight = w;
  CHECK(by_arrays.fit(x, y, fo).history == by_dataset.fit(*std::make_unique<ArrayDataset>(x, y, 4, BatchOptions{}, w),
                                                           quiet(2)).history);
  check_same_weights(by_arrays, by_dataset);
  Sequential ca = small_model(6), cb = small_model(6);
  for (Sequential* m : {&ca, &cb}) m->compile("sgd", "sparse_categorical_crossentropy");
  FitOptions co = quiet(2, 16);
  co.shuffle = false;
  co.class_weight = {{0, 2.0}, {2, 0.5}};
  ArrayDataset unweighted(d.x, d.y, 16);
  CHECK(ca.fit(d.x, d.y, co).history == cb.fit(unweighted, co).history);
  check_same_weights(ca, cb);
}

TEST_CASE("callbacks on a Dataset: EarlyStopping stops it, BackupAndRestore resumes it exactly", "[dataset]") {
  OnTheFly made(4);
  Sequential model = small_model(7);
  model.compile("sgd", "sparse_categorical_crossentropy");
  callbacks::EarlyStoppingOptions eo;
  eo.monitor = "loss";
  eo.min_delta = 1e9;  // no epoch after the first improves enough
  eo.patience = 1;
  auto stop = std::make_shared<callbacks::EarlyStopping>(eo);
  FitOptions o = quiet(10);
  o.callbacks = {stop};
  CHECK(model.fit(made, o).epoch == std::vector<int>{0, 1});
  CHECK(stop->stopped_epoch() == 1);
  CHECK(made.epochs_ended == 2);

  // a shuffled ArrayDataset: the resumed run takes the orders of the epochs it resumes at
  TempDir dir;
  const Data d = blobs(64, 9);
  auto net = [] {
    auto m = std::make_unique<Sequential>(small_model(8));
    m->compile(std::make_shared<optimizers::Adam>(1e-2), "sparse_categorical_crossentropy");
    return m;
  };
  ArrayDataset first(d.x, d.y, 16, {true, 4});
  auto whole = net();
  whole->fit(first, quiet(4));
  auto crash = std::make_shared<callbacks::LambdaCallback>();
  crash->epoch_begin = [](int epoch, const Logs&) {
    if (epoch == 2) throw std::runtime_error("simulated crash");
  };
  FitOptions b = quiet(4);
  b.callbacks = {std::make_shared<callbacks::BackupAndRestore>(dir.file("backup")), crash};
  ArrayDataset second(d.x, d.y, 16, {true, 4});
  CHECK_THROWS_WITH(net()->fit(second, b), "simulated crash");
  b.callbacks = {std::make_shared<callbacks::BackupAndRestore>(dir.file("backup"))};
  ArrayDataset third(d.x, d.y, 16, {true, 4});  // a fresh process
  auto again = net();
  CHECK(again->fit(third, b).epoch == std::vector<int>{2, 3});
  check_same_weights(*again, *whole);
}

TEST_CASE("a Functional model of two inputs and two outputs trains and predicts on a Dataset", "[dataset]") {
  const std::int64_t n = 40;
  const Tensor xa = lt::irregular({n, 4}), xb = lt::irregular({n, 2}, 0, 1);
  const Tensor ya = lt::irregular({n, 1}, 0, 2), yb = lt::irregular({n, 1}, 0, 3);
  auto make = [] {
    KerasTensor a = Input({4}), b = Input({2});
    KerasTensor joined = apply_layer(Concatenate(), {a, b});
    auto p = std::make_shared<Dense>(1), q = std::make_shared<Dense>(1);
    p->set_name("p");
    q->set_name("q");
    auto m = std::make_unique<Functional>(std::vector<KerasTensor>{a, b},
                                          std::vector<KerasTensor>{(*p)(joined), (*q)(joined)});
    m->set_seed(2);
    m->compile("sgd", {OutputLoss("mse", {"mae"}), OutputLoss("mse", {}, 0.5)});
    return m;
  };
  auto by_arrays = make(), by_dataset = make();
  FitOptions o = quiet(3, 8);
  o.seed = 5;
  ArrayDataset data({xa, xb}, {ya, yb}, 8, {true, 5});
  const History h = by_dataset->fit(data, o);
  CHECK(h.contains("p_mae"));
  CHECK(h.contains("q_loss"));
  CHECK(by_arrays->fit({xa, xb}, {ya, yb}, o).history == h.history);
  check_same_weights(*by_arrays, *by_dataset);
  ArrayDataset inputs_only({xa, xb}, {}, 16);
  const std::vector<Tensor> pd = by_dataset->predict(inputs_only), pa = by_arrays->predict({xa, xb}, 16);
  REQUIRE(pd.size() == 2);
  for (std::size_t i = 0; i < 2; ++i) CHECK(same_bytes(pd[i], pa[i]));
  CHECK(pd[1].shape() == Shape{n, 1});
}

TEST_CASE("a Dataset's batches are checked; the errors name the model, the method and the batch", "[dataset]") {
  const Data d = blobs(8, 1);
  Sequential model = small_model(1);
  model.compile("sgd", "sparse_categorical_crossentropy");
  const Tensor x = d.x(Slice(0, 4)), y = d.y(Slice(0, 4));
  Batches two_inputs(1, [&](std::int64_t) { return DataBatch{{x, x}, {y}, Tensor()}; });
  CHECK_THROWS_WITH(model.fit(two_inputs, quiet(1)), "sequential: fit: batch 0 has 2 input(s); the model takes 1");
  Batches short_y(2, [&](std::int64_t i) { return DataBatch{{x}, {i == 1 ? y(Slice(0, 3)) : y}, Tensor()}; });
  CHECK_THROWS_WITH(model.fit(short_y, quiet(1)),
                    "sequential: fit: batch 1's x and y must have as many examples: x [4, 4], y [3]");
  Batches short_w(1, [&](std::int64_t) { return DataBatch{{x}, {y}, ones({3})}; });
  CHECK_THROWS_WITH(model.evaluate(short_w, 0, 0),
                    "sequential: evaluate: batch 0's sample_weight must be [n] = [4], got [3]");
  Batches empty(1, [&](std::int64_t) { return DataBatch{{x(Slice(0, 0))}, {}, Tensor()}; });
  CHECK_THROWS_WITH(model.predict(empty), "sequential: predict: batch 0's x has no examples (shape [0, 4])");
  Batches none(0, [&](std::int64_t) { return DataBatch{}; });
  CHECK_THROWS_WITH(model.fit(none, quiet(1)), "sequential: fit: the dataset has no batches");
  // FitOptions that need arrays, or conflict
  Batches good(2, [&](std::int64_t) { return DataBatch{{x}, {y}, Tensor()}; });
  FitOptions o = quiet(1);
  o.sample_weight = ones({8});
  CHECK_THROWS_WITH(model.fit(good, o), Catch::Contains("sequential: fit: sample_weight is for arrays"));
  o = quiet(1);
  o.validation_split = 0.5;
  CHECK_THROWS_WITH(model.fit(good, o), Catch::Contains("sequential: fit: validation_split needs arrays"));
  o = quiet(1);
  o.validation_dataset = &good;
  o.validation_data = std::make_pair(x, y);
  CHECK_THROWS_WITH(model.fit(good, o), "sequential: fit: give validation_dataset or validation_data, not both");
  o = quiet(1);
  o.steps_per_epoch = -1;
  CHECK_THROWS_AS(model.fit(good, o), ValueError);
  o = quiet(1);
  o.class_weight = {{0, 2.0}};
  Batches with_w(1, [&](std::int64_t) { return DataBatch{{x}, {y}, ones({4})}; });
  CHECK_THROWS_WITH(model.fit(with_w, o), "sequential: fit: batch 0 has sample weights and fit was given "
                                           "class_weight; give one of them");
  // the adapters
  CHECK_THROWS_WITH(ArrayDataset(d.x, d.y(Slice(0, 7))),
                    "ArrayDataset: every input and target must be [n, ...] with the same n: inputs[0] [8, 4] "
                    "targets[0] [7]");
  CHECK_THROWS_WITH(ArrayDataset(d.x, d.y, 4, {}, ones({3})), "ArrayDataset: sample_weight must be [n] = [8], got [3]");
  ArrayDataset arrays(d.x, d.y, 3);
  CHECK(arrays.num_batches() == 3);
  CHECK(arrays.get_batch(2).inputs[0].shape() == Shape{2, 4});
  CHECK_THROWS_WITH(arrays.get_batch(3), "ArrayDataset: get_batch: index 3 is out of range [0, 3)");
  CHECK_THROWS_AS(arrays.get_batch(-1), IndexError);
  CHECK_THROWS_AS(ArrayDataset(d.x, d.y, 0), ValueError);
  CHECK_THROWS_WITH(GeneratorDataset(nullptr), "GeneratorDataset: the generator function is empty");
}

TEST_CASE("validation_freq validates every n-th epoch only, as Keras", "[model]") {
  const Tensor x = lt::irregular({16, 3}), y = lt::irregular({16, 1});
  Sequential model(Dense(1));
  model.set_seed(1);
  model.compile("sgd", "mse");
  FitOptions o;
  o.epochs = 4;
  o.batch_size = 8;
  o.verbose = 0;
  o.validation_data = std::make_pair(x, y);
  o.validation_freq = 2;  // after epochs 2 and 4 (counting from 1)
  const History h = model.fit(x, y, o);
  CHECK(h["loss"].size() == 4);
  CHECK(h["val_loss"].size() == 2);
  CHECK(h["val_loss"][1] == model.evaluate(x, y, 8, 0).at("loss"));  // the last epoch's weights
  o.validation_freq = 0;
  CHECK_THROWS_WITH(model.fit(x, y, o), "sequential: fit: validation_freq must be >= 1, got 0");
}

TEST_CASE("TimeseriesDataset cuts Keras's sliding windows and trains an LSTM", "[model][dataset]") {
  std::vector<double> dv(40), tv(20);
  for (std::size_t i = 0; i < dv.size(); ++i) dv[i] = double(i);
  for (std::size_t i = 0; i < tv.size(); ++i) tv[i] = 100.0 + double(i);
  const Tensor data = tensor(dv, {20, 2}), targets = tensor(tv, {20});
  // Keras 3.15's timeseries_dataset_from_array(data, targets, sequence_length=4, sequence_stride=2,
  // sampling_rate=3, batch_size=3, start_index=1, end_index=18) gives these batches (column 0)
  TimeseriesOptions o;
  o.sequence_stride = 2;
  o.sampling_rate = 3;
  o.batch_size = 3;
  o.start_index = 1;
  o.end_index = 18;
  TimeseriesDataset ds(data, targets, 4, o);
  REQUIRE(ds.num_batches() == 2);
  CHECK(ds.num_sequences() == 4);
  const DataBatch b0 = ds.get_batch(0), b1 = ds.get_batch(1);
  CHECK(b0.inputs[0].shape() == Shape{3, 4, 2});
  CHECK(lt::dvals(b0.inputs[0](all, all, 0)) == std::vector<double>{2, 8, 14, 20, 6, 12, 18, 24, 10, 16, 22, 28});
  CHECK(lt::dvals(b0.inputs[0](all, all, 1)) == std::vector<double>{3, 9, 15, 21, 7, 13, 19, 25, 11, 17, 23, 29});
  CHECK(lt::dvals(b0.targets[0]) == std::vector<double>{101, 103, 105});
  CHECK(lt::dvals(b1.inputs[0](all, all, 0)) == std::vector<double>{14, 20, 26, 32});
  CHECK(lt::dvals(b1.targets[0]) == std::vector<double>{107});
  // fewer targets than windows: as many sequences as targets (Keras: [0, 4, 8, 12] ... [8, ..., 20])
  TimeseriesOptions o2;
  o2.sampling_rate = 2;
  o2.batch_size = 4;
  TimeseriesDataset short_targets(data, targets(Slice(0, 5)), 4, o2);
  CHECK(short_targets.num_sequences() == 5);
  CHECK(lt::dvals(short_targets.get_batch(1).inputs[0](all, all, 0)) == std::vector<double>{8, 12, 16, 20});
  // shuffled: every sequence once per epoch, a new order per epoch, the same for the same seed
  TimeseriesOptions so = o;
  so.shuffle = true;
  so.seed = 4;
  TimeseriesDataset shuffled(data, targets, 4, so), again(data, targets, 4, so);
  auto firsts = [](TimeseriesDataset& d, std::int64_t epoch) {
    d.set_epoch(epoch);
    std::vector<double> out;
    for (std::int64_t i = 0; i < d.num_batches(); ++i) {
      const auto v = lt::dvals(d.get_batch(i).targets[0]);
      out.insert(out.end(), v.begin(), v.end());
    }
    return out;
  };
  const auto e0 = firsts(shuffled, 0), e1 = firsts(shuffled, 1);
  CHECK(std::is_permutation(e0.begin(), e0.end(), std::vector<double>{101, 103, 105, 107}.begin()));
  CHECK(firsts(again, 1) == e1);
  // it trains a model through fit
  Sequential model(LSTM(3), Dense(1));
  model.set_seed(2);
  model.compile("adam", "mse");
  FitOptions fo;
  fo.epochs = 2;
  fo.verbose = 0;
  const History h = model.fit(shuffled, fo);
  CHECK(h["loss"].size() == 2);
  CHECK(std::isfinite(h["loss"][1]));
  // Keras's checks, named
  auto bad = [&](TimeseriesOptions t, std::int64_t length = 4) { TimeseriesDataset d(data, targets, length, t); };
  TimeseriesOptions t1 = o;
  t1.end_index = 20;
  CHECK_THROWS_WITH(bad(t1), "timeseries_dataset_from_array: end_index must be in (1, 20) (after start_index, before "
                             "the data's end), got 20");
  TimeseriesOptions t2 = o;
  t2.sampling_rate = 0;
  CHECK_THROWS_WITH(bad(t2), "timeseries_dataset_from_array: sampling_rate must be in [1, 20) (the data's length), got 0");
  CHECK_THROWS_WITH(bad(o, 7), "timeseries_dataset_from_array: rows [1, 18) of data [20, 2] (and targets [20]) hold no "
                               "sequence of 7 rows 3 apart");
  CHECK_THROWS_AS(ds.get_batch(2), IndexError);
}

TEST_CASE("fit with an optimizer's use_ema ends with the moving averages as the weights, as Keras") {
  const Data train = blobs(200, 1);
  optimizers::AdamOptions o;
  o.learning_rate = 0.01;
  o.use_ema = true;
  o.ema_momentum = 0.8;
  auto adam = std::make_shared<optimizers::Adam>(o);
  Sequential model = small_model();
  model.compile(adam, "sparse_categorical_crossentropy", {"accuracy"});
  std::vector<Tensor> seen_at_end;
  auto cb = std::make_shared<callbacks::LambdaCallback>();
  cb->train_end = [&](const Logs&) {
    for (const auto& w : model.trainable_weights()) seen_at_end.push_back(w.clone());
  };
  FitOptions f = quiet(6);
  f.callbacks = {cb};
  model.fit(train.x, train.y, f);
  const auto ws = model.trainable_weights();
  REQUIRE(seen_at_end.size() == ws.size());
  for (std::size_t i = 0; i < ws.size(); ++i) {
    INFO(ws[i].name());
    const Tensor average = adam->get_slot(ws[i], "average");
    REQUIRE(average.defined());
    CHECK(same_bytes(ws[i], average));
    CHECK(same_bytes(seen_at_end[i], average));  // already in place when on_train_end runs
  }
  CHECK(model.evaluate(train.x, train.y, 64, 0).at("accuracy") >= 0.9);
}

TEST_CASE("train_on_batch, test_on_batch and predict_on_batch: one batch, its own logs, as Keras 3") {
  const Data d = blobs(48, 3);
  const Tensor x = d.x(Slice(0, 16)), y = d.y(Slice(0, 16));
  Sequential a = small_model(2), b = small_model(2);
  a.compile(std::make_shared<optimizers::SGD>(0.1), "sparse_categorical_crossentropy", {"accuracy"});
  b.compile(std::make_shared<optimizers::SGD>(0.1), "sparse_categorical_crossentropy", {"accuracy"});
  // the same step as train_step on the same batch, on a model not built yet
  const Logs first = a.train_on_batch(x, y);
  b.build({-1, 4});
  b.reset_metrics();
  const Logs step = b.train_step(x, y);
  CHECK(first.at("loss") == step.at("loss"));
  const auto wa = a.weights(), wb = b.weights();
  REQUIRE(wa.size() == wb.size());
  for (std::size_t i = 0; i < wa.size(); ++i) CHECK(same_bytes(wa[i], wb[i]));
  // each call's logs are its batch's alone (metrics reset first), not running means
  const Logs second = a.train_on_batch(d.x(Slice(16, 32)), d.y(Slice(16, 32)));
  const Logs alone = a.test_on_batch(d.x(Slice(16, 32)), d.y(Slice(16, 32)));
  const Logs whole = a.evaluate(d.x(Slice(16, 32)), d.y(Slice(16, 32)), 16, 0);
  CHECK(alone.at("loss") == Approx(whole.at("loss")).epsilon(1e-6));
  CHECK(alone.at("accuracy") == whole.at("accuracy"));
  CHECK(second.count("accuracy") == 1);
  // predict_on_batch is predict on one batch
  CHECK(same_bytes(a.predict_on_batch(x), a.predict(x, 16)));
  // class weights as fit's: a weight of 0 on every class leaves the weights alone
  const auto before = a.weights();
  std::vector<Tensor> kept;
  for (const auto& w : before) kept.push_back(w.clone());
  const Logs zero = a.train_on_batch(x, y, Tensor(), {{0, 0.0}, {1, 0.0}, {2, 0.0}});
  CHECK(zero.at("loss") == 0.0);
  for (std::size_t i = 0; i < kept.size(); ++i) CHECK(same_bytes(before[i], kept[i]));
  // and sample weights the same way
  a.train_on_batch(x, y, zeros({16}));
  for (std::size_t i = 0; i < kept.size(); ++i) CHECK(same_bytes(before[i], kept[i]));
  CHECK_THROWS_WITH(a.train_on_batch(x, y, ones({16}), {{0, 2.0}}), Catch::Contains("not both"));
  CHECK_THROWS_WITH(a.train_on_batch(x, one_hot(y, 3).expand_dims(1), Tensor(), {{0, 2.0}}),
                    Catch::Contains("train_on_batch: class_weight needs labels"));
  Sequential uncompiled = small_model();
  CHECK_THROWS_WITH(uncompiled.train_on_batch(x, y),
                    Catch::Contains("train_on_batch") && Catch::Contains("compile"));
  CHECK_THROWS_AS(uncompiled.test_on_batch(x, y), ValueError);
  CHECK(uncompiled.predict_on_batch(x).shape() == Shape{16, 3});  // predicting needs no compile
}
