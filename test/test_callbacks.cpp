// The learning-rate callbacks (ReduceLROnPlateau, LearningRateScheduler), TerminateOnNaN and
// LambdaCallback: Keras 3's rules traced by hand, and their effect inside fit.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "tapeflow/tapeflow.hpp"

using namespace tapeflow;
using Catch::Matchers::Contains;

namespace {

struct Data {
  Tensor x, y;
};

// Two Gaussian blobs in 4-D, labels 0 / 1 as float32 [n, 1].
Data blobs(std::int64_t n, std::uint64_t seed) {
  Generator gen(seed);
  Tensor x = normal({n, 4}, gen);
  std::vector<float> labels(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) labels[static_cast<std::size_t>(i)] = static_cast<float>(i % 2);
  const Tensor y = tensor(labels, {n, 1});
  x = x + y * 3.0;  // class 1 shifted
  return {x, y};
}

std::shared_ptr<Sequential> small_model(const std::shared_ptr<optimizers::Optimizer>& opt) {
  auto m = std::make_shared<Sequential>(layers::Dense(8, "relu"), layers::Dense(1, "sigmoid"));
  m->set_seed(2);
  m->compile(opt, "binary_crossentropy");
  return m;
}

}  // namespace

TEST_CASE("ReduceLROnPlateau follows Keras 3's patience, cooldown and min_lr rule", "[callbacks]") {
  auto model = small_model(std::make_shared<optimizers::SGD>(1.0));
  model->build({-1, 4});
  callbacks::ReduceLROnPlateauOptions o;
  o.factor = 0.5;
  o.patience = 2;
  o.cooldown = 1;
  o.min_lr = 0.1;
  callbacks::ReduceLROnPlateau cb(o);
  cb.set_model(model.get());
  cb.on_train_begin({});
  const std::vector<double> val_loss = {1.0, 0.9, 0.95, 0.92, 0.91, 0.93, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99};
  // traced by hand from keras/src/callbacks/reduce_lr_on_plateau.py: reductions after epochs
  // 3, 5, 7 and 9 (the cooldown epoch after each resets the wait), the last one clipped to
  // min_lr, and none at 11 (0.1 is not above float32(0.1))
  const std::vector<double> want = {1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125, 0.1, 0.1, 0.1};
  for (std::size_t e = 0; e < val_loss.size(); ++e) {
    INFO("epoch " << e);
    cb.on_epoch_end(static_cast<int>(e), {{"val_loss", val_loss[e]}});
    CHECK(model->optimizer().learning_rate() == want[e]);
  }
  // accuracy: larger is better; as Keras 3.15, the first epoch is the best so far whatever it
  // is, so a NaN there is never improved on: every later epoch waits
  auto m2 = small_model(std::make_shared<optimizers::SGD>(0.4));
  o = {};
  o.monitor = "val_accuracy";
  o.patience = 1;
  callbacks::ReduceLROnPlateau acc(o);
  acc.set_model(m2.get());
  acc.on_train_begin({});
  acc.on_epoch_end(0, {{"val_accuracy", std::nan("")}});
  CHECK(m2->optimizer().learning_rate() == Approx(0.4));
  acc.on_epoch_end(1, {{"val_accuracy", 0.5}});
  CHECK(m2->optimizer().learning_rate() == Approx(0.04));
  // a finite start: 0.5, then 0.7 improves, 0.6 does not
  auto m3 = small_model(std::make_shared<optimizers::SGD>(0.4));
  callbacks::ReduceLROnPlateau acc3(o);
  acc3.set_model(m3.get());
  acc3.on_train_begin({});
  acc3.on_epoch_end(0, {{"val_accuracy", 0.5}});
  acc3.on_epoch_end(1, {{"val_accuracy", 0.7}});
  CHECK(m3->optimizer().learning_rate() == Approx(0.4));
  acc3.on_epoch_end(2, {{"val_accuracy", 0.6}});
  CHECK(m3->optimizer().learning_rate() == Approx(0.04));
  // auc, precision and recall are larger-is-better too (Keras 3's metric directions)
  auto m4 = small_model(std::make_shared<optimizers::SGD>(0.4));
  o.monitor = "val_auc";
  callbacks::ReduceLROnPlateau up(o);
  up.set_model(m4.get());
  up.on_train_begin({});
  for (int e = 0; e < 4; ++e) up.on_epoch_end(e, {{"val_auc", 0.5 + 0.1 * e}});
  CHECK(m4->optimizer().learning_rate() == Approx(0.4));
  // at min_lr no more reductions are made (nor reported): the rate compares as float32
  auto m5 = small_model(std::make_shared<optimizers::SGD>(1e-3));
  callbacks::ReduceLROnPlateauOptions floor;
  floor.monitor = "loss";
  floor.patience = 1;
  floor.min_lr = 1e-4;
  callbacks::ReduceLROnPlateau at_floor(floor);
  at_floor.set_model(m5.get());
  at_floor.on_train_begin({});
  for (int e = 0; e < 6; ++e) at_floor.on_epoch_end(e, {{"loss", 1.0}});
  CHECK(m5->optimizer().learning_rate() == 1e-4);

  CHECK_THROWS_AS(callbacks::ReduceLROnPlateau([] {
                    callbacks::ReduceLROnPlateauOptions bad;
                    bad.factor = 1.0;
                    return bad;
                  }()),
                  ValueError);
}

TEST_CASE("EarlyStopping's Auto mode maximises auc, precision and recall (Keras 3's directions)", "[callbacks]") {
  auto model = small_model(std::make_shared<optimizers::SGD>(0.1));
  for (const char* metric : {"val_auc", "val_precision", "recall", "val_top_k_categorical_accuracy"}) {
    INFO(metric);
    model->stop_training = false;
    callbacks::EarlyStopping es(metric, 1);
    es.set_model(model.get());
    es.on_train_begin({});
    for (int e = 0; e < 4; ++e) es.on_epoch_end(e, {{metric, 0.5 + 0.1 * e}});
    CHECK_FALSE(model->stop_training);
  }
  callbacks::EarlyStopping loss("val_loss", 1);
  loss.set_model(model.get());
  loss.on_train_begin({});
  for (int e = 0; e < 3; ++e) loss.on_epoch_end(e, {{"val_loss", 0.5 + 0.1 * e}});
  CHECK(model->stop_training);
}

TEST_CASE("ReduceLROnPlateau and LearningRateScheduler inside fit; schedules refused", "[callbacks][fit]") {
  const Data d = blobs(64, 1);
  FitOptions o;
  o.epochs = 4;
  o.verbose = 0;
  o.batch_size = 16;
  {
    auto model = small_model(std::make_shared<optimizers::SGD>(0.1));
    std::vector<double> seen;
    auto record = std::make_shared<callbacks::LambdaCallback>();
    record->epoch_begin = [&](int, const Logs&) { seen.push_back(model->optimizer().learning_rate()); };
    o.callbacks = {std::make_shared<callbacks::LearningRateScheduler>(
                       [](int epoch, double lr) { return epoch >= 2 ? lr * 0.5 : lr; }),
                   record};
    model->fit(d.x, d.y, o);
    CHECK(seen == std::vector<double>{0.1, 0.1, 0.05, 0.025});
  }
  {
    // the same training by hand-set rates gives the same weights: the rate really is used
    auto a = small_model(std::make_shared<optimizers::SGD>(0.1));
    o.callbacks = {std::make_shared<callbacks::LearningRateScheduler>([](int epoch, double) { return epoch < 2 ? 0.1 : 0.02; })};
    a->fit(d.x, d.y, o);
    auto b = small_model(std::make_shared<optimizers::SGD>(0.1));
    FitOptions first = o;
    first.callbacks = {};
    first.epochs = 2;
    b->fit(d.x, d.y, first);
    b->optimizer().set_learning_rate(0.02);
    FitOptions rest = first;
    rest.initial_epoch = 2;
    rest.epochs = 4;
    b->fit(d.x, d.y, rest);
    const auto wa = a->weights(), wb = b->weights();
    for (std::size_t i = 0; i < wa.size(); ++i) CHECK(wa[i].to_vector<float>() == wb[i].to_vector<float>());
  }
  {
    auto model = small_model(std::make_shared<optimizers::SGD>(optimizers::schedules::ExponentialDecay(0.1, 10, 0.9)));
    o.callbacks = {std::make_shared<callbacks::ReduceLROnPlateau>()};
    CHECK_THROWS_WITH(model->fit(d.x, d.y, o), Contains("ReduceLROnPlateau") && Contains("schedule"));
    o.callbacks = {std::make_shared<callbacks::LearningRateScheduler>([](int, double lr) { return lr; })};
    CHECK_THROWS_WITH(model->fit(d.x, d.y, o), Contains("LearningRateScheduler") && Contains("schedule"));
  }
  {
    auto model = small_model(std::make_shared<optimizers::SGD>(0.1));
    o.callbacks = {std::make_shared<callbacks::LearningRateScheduler>([](int, double) { return std::nan(""); })};
    CHECK_THROWS_WITH(model->fit(d.x, d.y, o), Contains("LearningRateScheduler") && Contains("nan"));
    CHECK_THROWS_AS(callbacks::LearningRateScheduler(nullptr), ValueError);
  }
}

TEST_CASE("TerminateOnNaN stops after the first batch with a NaN loss; LambdaCallback sees every hook",
          "[callbacks][fit]") {
  Data d = blobs(64, 3);
  std::vector<float> xs = d.x.to_vector<float>();
  xs[25 * 4] = std::numeric_limits<float>::quiet_NaN();  // example 25: in batch 2 of 10-example batches
  const Tensor x = tensor(xs, {64, 4});
  auto model = small_model(std::make_shared<optimizers::SGD>(0.1));
  int begins = 0, ends = 0, epoch_begins = 0, epoch_ends = 0;
  std::vector<std::int64_t> batches;
  auto lambda = std::make_shared<callbacks::LambdaCallback>();
  lambda->train_begin = [&](const Logs&) { ++begins; };
  lambda->train_end = [&](const Logs&) { ++ends; };
  lambda->epoch_begin = [&](int, const Logs&) { ++epoch_begins; };
  lambda->epoch_end = [&](int, const Logs&) { ++epoch_ends; };
  lambda->train_batch_end = [&](std::int64_t b, const Logs&) { batches.push_back(b); };
  FitOptions o;
  o.epochs = 3;
  o.batch_size = 10;
  o.shuffle = false;
  o.verbose = 0;
  o.callbacks = {lambda, std::make_shared<callbacks::TerminateOnNaN>()};
  const History h = model->fit(x, d.y, o);
  CHECK(batches == std::vector<std::int64_t>{0, 1, 2});  // example 25 is in batch 2
  CHECK(begins == 1);
  CHECK(ends == 1);
  CHECK(epoch_begins == 1);
  CHECK(epoch_ends == 1);
  CHECK(h.epoch.size() == 1);
  CHECK(std::isnan(h.history.at("loss").back()));
  // a finite run is not stopped
  auto clean = small_model(std::make_shared<optimizers::SGD>(0.1));
  o.callbacks = {std::make_shared<callbacks::TerminateOnNaN>()};
  CHECK(clean->fit(d.x, d.y, o).epoch.size() == 3);
}

TEST_CASE("fit reads a batch's metrics only for a callback that reads its logs; an override's keys stay",
          "[callbacks][fit]") {
  // which built-in callbacks read each batch's logs: TerminateOnNaN (its hook reads the loss);
  // the epoch callbacks only until their base hook has run (the first batch)
  callbacks::TerminateOnNaN nan_stop;
  nan_stop.on_train_batch_end(0, {{"loss", 1.0}});
  CHECK(nan_stop.reads_batch_logs());
  callbacks::EarlyStopping early;
  callbacks::ReduceLROnPlateau plateau;
  callbacks::LearningRateScheduler schedule([](int, double lr) { return lr; });
  for (callbacks::Callback* cb : std::vector<callbacks::Callback*>{&early, &plateau, &schedule}) {
    CHECK(cb->reads_batch_logs());
    cb->on_train_batch_end(0, {});
    CHECK_FALSE(cb->reads_batch_logs());
  }
  // a subclass of an epoch callback that adds a batch hook reads every batch
  struct Watching : callbacks::EarlyStopping {
    void on_train_batch_end(std::int64_t, const Logs&) override {}
  };
  Watching watching;
  watching.on_train_batch_end(0, {});
  CHECK(watching.reads_batch_logs());
  callbacks::LambdaCallback lambda;
  CHECK_FALSE(lambda.reads_batch_logs());
  lambda.train_batch_end = [](std::int64_t, const Logs&) {};
  CHECK(lambda.reads_batch_logs());

  // A train_step that adds a key to the built-in step's logs, and callbacks that read and do
  // not read a batch's logs.
  class Extra : public Sequential {
   public:
    Extra() : Sequential(layers::Dense(8, "relu"), layers::Dense(1, "sigmoid")) {}
    Logs train_step(const Tensor& x, const Tensor& y) override {
      Logs logs = Sequential::train_step(x, y);
      logs["examples"] = static_cast<double>(x.dim(0));
      return logs;
    }
  };
  struct Blind : callbacks::Callback {
    std::vector<std::size_t> sizes;
    void on_train_batch_end(std::int64_t, const Logs& logs) override { sizes.push_back(logs.size()); }
    bool reads_batch_logs() const override { return false; }
  };
  // a callback without a batch hook reads the first batch's logs only (its hook is the base's)
  struct EpochOnly : callbacks::Callback {};
  EpochOnly epoch_only;
  CHECK(epoch_only.reads_batch_logs());
  epoch_only.on_train_batch_end(0, {});
  CHECK_FALSE(epoch_only.reads_batch_logs());
  const Data d = blobs(40, 8);
  {
    Extra model;
    model.set_seed(2);
    model.compile("sgd", "binary_crossentropy", {"accuracy"});
    auto blind = std::make_shared<Blind>();
    FitOptions o;
    o.epochs = 2;
    o.batch_size = 16;
    o.verbose = 0;
    o.callbacks = {blind, std::make_shared<EpochOnly>()};
    model.fit(d.x, d.y, o);
    CHECK(blind->sizes == std::vector<std::size_t>{3, 1, 1, 1, 1, 1});
  }
  for (bool reading : {false, true}) {
    INFO("a reading callback: " << reading);
    Extra model;
    model.set_seed(2);
    model.compile("sgd", "binary_crossentropy", {"accuracy"});
    auto blind = std::make_shared<Blind>();
    auto seen = std::make_shared<callbacks::LambdaCallback>();
    std::vector<Logs> batches;
    seen->train_batch_end = [&](std::int64_t, const Logs& logs) { batches.push_back(logs); };
    FitOptions o;
    o.epochs = 2;
    o.batch_size = 16;  // 3 batches: 16, 16, 8
    o.shuffle = false;
    o.verbose = 0;
    o.callbacks = {blind};
    if (reading) o.callbacks.push_back(seen);
    const History h = model.fit(d.x, d.y, o);
    // the epoch's logs hold the metrics and the override's key, also when no batch was read
    REQUIRE(h.history.at("examples") == std::vector<double>{8, 8});
    REQUIRE(h.history.at("loss").size() == 2);
    REQUIRE(h.history.at("accuracy").size() == 2);
    if (!reading) {
      // nobody read a batch: the built-in step's metrics were left unread; only the key the
      // override added was there
      CHECK(blind->sizes == std::vector<std::size_t>(6, 1));
      continue;
    }
    CHECK(blind->sizes == std::vector<std::size_t>(6, 3));  // the logs were read for `seen`
    REQUIRE(batches.size() == 6);
    for (const Logs& logs : batches) {
      CHECK(logs.count("loss") == 1);
      CHECK(logs.count("accuracy") == 1);
    }
    CHECK(batches[0].at("examples") == 16);
    // the last batch of an epoch logs the epoch's running values
    CHECK(batches[2].at("loss") == h.history.at("loss")[0]);
    CHECK(batches[5].at("accuracy") == h.history.at("accuracy")[1]);
    CHECK(batches[3].at("loss") != batches[2].at("loss"));  // reset each epoch
  }
}
