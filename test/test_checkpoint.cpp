// Resumable training: Generator::set_state, the optimizers' get_state / set_state (the next
// update after a restore is bit-identical), Model::save_checkpoint / load_checkpoint (a run
// stopped and resumed by a fresh model gives the weights of a run never stopped, bit for bit;
// every bad file is refused with nothing changed), load_weights on a checkpoint, and the
// ModelCheckpoint and BackupAndRestore callbacks. The resumed runs repeat on cuda:0 where one
// is usable (the CUDA emulator in CI).
#include <catch2/catch.hpp>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "layer_test_util.hpp"
#include "tapeflow/tapeflow.hpp"

using namespace tapeflow;
using namespace tapeflow::layers;
namespace fs = std::filesystem;
namespace opt = tapeflow::optimizers;

using lt::devices;

namespace {

// The CPU, then cuda:0 where one is usable.

// A folder of its own under the system's temp dir, removed with its content at the end.
struct Scratch {
  fs::path root = fs::temp_directory_path() /
                  ("tapeflow_test_checkpoint_" + std::to_string(::getpid()) + "_" +
                   std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  Scratch() { fs::create_directories(root); }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
  std::string operator/(const std::string& name) const { return (root / name).string(); }
};

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined()) return a.defined() == b.defined();
  const Tensor ca = a.to(Device::cpu()).contiguous(), cb = b.to(Device::cpu()).contiguous();
  return ca.shape() == cb.shape() && ca.dtype() == cb.dtype() &&
         std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.nbytes()) == 0;
}

bool same_weights(const Model& a, const Model& b) {
  const auto wa = a.weights(), wb = b.weights();
  if (wa.size() != wb.size()) return false;
  for (std::size_t i = 0; i < wa.size(); ++i) {
    if (wa[i].name() != wb[i].name() || !bitwise_equal(wa[i], wb[i])) return false;
  }
  return true;
}

// Three classes, 4 features: class c shifts feature c by 2.
struct Data {
  Tensor x, y;
};
Data three_classes(std::int64_t n) {
  std::vector<std::int64_t> labels;
  std::vector<float> shift;
  for (std::int64_t i = 0; i < n; ++i) {
    labels.push_back((i * 7) % 3);
    for (std::int64_t f = 0; f < 4; ++f) shift.push_back(f == labels.back() ? 2.0f : 0.0f);
  }
  Generator gen(17);
  return {tensor<float>(shift, {n, 4}) + normal({n, 4}, gen), tensor<std::int64_t>(labels, {n})};
}

// A layer made of tracked sublayers, one with dropout: its generator state is a sublayer's.
class Block : public Layer {
 public:
  Block() : Layer("Block", "") {
    hidden_ = track(std::make_shared<Dense>(16, "relu"));
    drop_ = track(std::make_shared<Dropout>(0.3));
  }
  Tensor call(const Tensor& x, bool training) override { return (*drop_)((*hidden_)(x, training), training); }

 private:
  std::shared_ptr<Dense> hidden_;
  std::shared_ptr<Dropout> drop_;
};

// The network of the resumed runs: dropout in a sublayer and in the model, Adam.
std::unique_ptr<Sequential> net(Device device, std::shared_ptr<opt::Optimizer> optimizer = nullptr) {
  auto m = std::make_unique<Sequential>(std::make_shared<Block>(), std::make_shared<Dropout>(0.2),
                                        std::make_shared<Dense>(3, "softmax"));
  m->set_seed(5);
  m->set_device(device);
  m->compile(optimizer ? optimizer : std::make_shared<opt::Adam>(1e-2), "sparse_categorical_crossentropy");
  return m;
}

FitOptions run(int epochs, int initial_epoch = 0) {
  FitOptions o;
  o.epochs = epochs;
  o.initial_epoch = initial_epoch;
  o.batch_size = 16;
  o.shuffle = true;
  o.seed = 3;
  o.verbose = 0;
  return o;
}

// Throws in the middle of epoch `epoch` (0-based), as a crash would stop the process.
class Crash : public callbacks::Callback {
 public:
  explicit Crash(int epoch) : epoch_(epoch) {}
  void on_epoch_begin(int epoch, const Logs&) override { current_ = epoch; }
  void on_train_batch_end(std::int64_t batch, const Logs&) override {
    if (current_ == epoch_ && batch == 1) throw std::runtime_error("simulated crash");
  }

 private:
  int epoch_, current_ = -1;
};

// Everything a failed load must leave as it was.
struct Snapshot {
  std::vector<Tensor> weights;
  std::int64_t iterations;
  std::vector<Tensor> slots;
  std::vector<std::uint64_t> offsets;
  std::int64_t epochs;

  static std::vector<LayerPtr> every_layer(const Model& m) {
    std::vector<LayerPtr> out;
    std::function<void(const LayerPtr&)> add = [&](const LayerPtr& l) {
      out.push_back(l);
      for (const auto& s : l->sublayers()) add(s);
    };
    for (const auto& l : m.layers()) add(l);
    return out;
  }
  explicit Snapshot(const Model& m) : iterations(m.optimizer().iterations()), epochs(m.epochs_trained()) {
    for (const auto& w : m.weights()) weights.push_back(w.clone());
    for (const auto& w : m.trainable_weights()) {
      for (const auto& s : m.optimizer().slot_names()) {
        const Tensor t = m.optimizer().get_slot(w, s);
        slots.push_back(t.defined() ? t.clone() : t);
      }
    }
    for (const auto& l : every_layer(m)) offsets.push_back(l->generator().offset());
  }
  bool unchanged(const Model& m) const {
    const Snapshot now(m);
    if (now.iterations != iterations || now.epochs != epochs || now.offsets != offsets) return false;
    if (now.weights.size() != weights.size() || now.slots.size() != slots.size()) return false;
    for (std::size_t i = 0; i < weights.size(); ++i)
      if (!bitwise_equal(now.weights[i], weights[i])) return false;
    for (std::size_t i = 0; i < slots.size(); ++i)
      if (!bitwise_equal(now.slots[i], slots[i])) return false;
    return true;
  }
};

// Rewrites a checkpoint through `edit`, keeping its metadata.
std::string edited(const std::string& from, const std::string& to, const std::function<void(NamedTensors&)>& edit) {
  NamedTensors named = load_safetensors(from);
  edit(named);
  save_safetensors(to, named, load_safetensors_metadata(from));
  return to;
}

Tensor& entry(NamedTensors& named, const std::string& key) {
  for (auto& [k, t] : named)
    if (k == key) return t;
  throw std::runtime_error("no entry " + key);
}

}  // namespace

// ================================================================ Generator

TEST_CASE("Generator::set_state continues a stream where the saved generator was") {
  Generator a(42);
  (void)uniform({5}, a);
  Generator b(7);
  b.set_state(a.seed(), a.offset());
  CHECK(b.seed() == 42);
  CHECK(b.offset() == a.offset());
  CHECK(bitwise_equal(uniform({6}, a), uniform({6}, b)));
}

// ================================================================ optimizer state

namespace {

using Factory = std::function<std::shared_ptr<opt::Optimizer>()>;

std::vector<std::pair<std::string, Factory>> stateful_optimizers() {
  return {
      {"SGD momentum", [] { return std::make_shared<opt::SGD>(0.1, 0.9); }},
      {"SGD nesterov",
       [] {
         opt::SGDOptions o;
         o.momentum = 0.8;
         o.nesterov = true;
         return std::make_shared<opt::SGD>(o);
       }},
      {"RMSprop centered momentum",
       [] {
         opt::RMSpropOptions o;
         o.learning_rate = 0.01;
         o.centered = true;
         o.momentum = 0.5;
         return std::make_shared<opt::RMSprop>(o);
       }},
      {"Adam amsgrad",
       [] {
         opt::AdamOptions o;
         o.learning_rate = 0.01;
         o.amsgrad = true;
         return std::make_shared<opt::Adam>(o);
       }},
      {"AdamW", [] { return std::make_shared<opt::AdamW>(0.05); }},
      {"Adam with a schedule",
       [] { return std::make_shared<opt::Adam>(opt::schedules::ExponentialDecay(0.01, 2, 0.5)); }},
      // Adagrad's and Ftrl's accumulators start at 0.1, not 0; Nadam's momentum-schedule product follows iterations
      {"Adagrad", [] { return std::make_shared<opt::Adagrad>(0.1); }},
      {"Adadelta", [] { return std::make_shared<opt::Adadelta>(1.0); }},
      {"Adamax", [] { return std::make_shared<opt::Adamax>(0.05); }},
      {"Nadam", [] { return std::make_shared<opt::Nadam>(0.05); }},
      {"Nadam with a schedule",
       [] { return std::make_shared<opt::Nadam>(opt::schedules::ExponentialDecay(0.05, 2, 0.5)); }},
      {"Lion", [] { return std::make_shared<opt::Lion>(0.01); }},
      {"Ftrl",
       [] {
         opt::FtrlOptions o;
         o.learning_rate = 0.1;
         o.l1_regularization_strength = 0.01;
         o.l2_shrinkage_regularization_strength = 0.01;
         return std::make_shared<opt::Ftrl>(o);
       }},
  };
}

// Two variables (float32 and float64) named as a Dense layer's, on `device`.
std::vector<Variable> dense_variables(Device device) {
  Generator gen(9);
  return {Variable(normal({3, 4}, gen).to(device), "dense/kernel"),
          Variable(normal({4}, gen, 0, 1, kFloat64).to(device), "dense/bias")};
}

std::vector<Variable> copies(const std::vector<Variable>& vs) {
  std::vector<Variable> out;
  for (const auto& v : vs) out.emplace_back(v.clone(), v.name());
  return out;
}

// Step k's gradients: the same numbers for every optimizer and copy.
void step(opt::Optimizer& o, const std::vector<Variable>& vs, int k) {
  Generator gen(100 + static_cast<std::uint64_t>(k));
  std::vector<Tensor> grads;
  for (const auto& v : vs) grads.push_back(normal(v.shape(), gen, 0, 1, v.dtype()).to(v.device()));
  o.apply_gradients(grads, vs);
}

}  // namespace

TEST_CASE("optimizer state: the next steps after a restore equal the uninterrupted ones, bitwise", "[optim]") {
  for (const Device& device : devices()) {
    for (const auto& [label, make] : stateful_optimizers()) {
      for (int done : {0, 3}) {  // before the first step (no slot made yet) and after three
        INFO(label << " on " << device.str() << " after " << done << " steps");
        const auto a = make();
        const auto va = dense_variables(device);
        for (int k = 0; k < done; ++k) step(*a, va, k);
        const opt::OptimizerState state = a->get_state(va);
        CHECK(state.iterations == done);
        CHECK(state.slots.size() == va.size() * a->slot_names().size());
        for (const auto& [name, t] : state.slots) {
          CHECK(name.rfind(t.dtype() == kFloat64 ? "dense/bias/" : "dense/kernel/", 0) == 0);
          CHECK(t.device() == device);
        }

        // a fresh optimizer and fresh variables of the same names: a new process
        const auto b = make();
        const auto vb = copies(va);
        b->set_state(state, vb);
        CHECK(b->iterations() == done);
        CHECK(b->learning_rate() == a->learning_rate());
        for (int k = done; k < done + 2; ++k) {
          step(*a, va, k);
          step(*b, vb, k);
        }
        for (std::size_t i = 0; i < va.size(); ++i) {
          CHECK(bitwise_equal(va[i], vb[i]));
          for (const auto& s : a->slot_names()) {
            CHECK(bitwise_equal(a->get_slot(va[i], s), b->get_slot(vb[i], s)));
            CHECK(b->get_slot(vb[i], s).device() == device);
          }
        }
      }
    }
  }
}

TEST_CASE("optimizer state: names every slot, copies it, and restores a constant learning rate only", "[optim]") {
  opt::AdamOptions amsgrad;
  amsgrad.amsgrad = true;
  opt::Adam a(amsgrad);
  CHECK(a.slot_names() == std::vector<std::string>{"m", "v", "v_hat"});
  CHECK(opt::SGD(0.1).slot_names().empty());
  CHECK(opt::RMSprop().slot_names() == std::vector<std::string>{"velocity"});
  const auto va = dense_variables(Device::cpu());
  step(a, va, 0);
  opt::OptimizerState state = a.get_state(va);
  std::vector<std::string> names;
  for (const auto& [name, t] : state.slots) names.push_back(name);
  CHECK(names == std::vector<std::string>{"dense/kernel/m", "dense/kernel/v", "dense/kernel/v_hat", "dense/bias/m",
                                          "dense/bias/v", "dense/bias/v_hat"});
  // a snapshot: later steps do not reach it
  const Tensor m0 = state.slots[0].second.clone();
  step(a, va, 1);
  CHECK(bitwise_equal(state.slots[0].second, m0));
  CHECK_FALSE(bitwise_equal(a.get_slot(va[0], "m"), m0));

  // a constant replaces a constant; a schedule stays, following the restored iterations
  opt::SGD sgd(0.1, 0.9);
  const auto vs = dense_variables(Device::cpu());
  opt::OptimizerState s = sgd.get_state(vs);
  REQUIRE(s.learning_rate);
  CHECK(*s.learning_rate == 0.1);
  opt::SGD other(0.5, 0.9);
  other.set_state(s, copies(vs));
  CHECK(other.learning_rate() == 0.1);
  opt::SGD scheduled(opt::schedules::ExponentialDecay(1.0, 1, 0.5), 0.9);
  s.iterations = 3;
  scheduled.set_state(s, copies(vs));
  CHECK(scheduled.learning_rate() == 0.125);
  // a schedule saves no learning rate; the constant of the restored optimizer stays
  const opt::OptimizerState from_schedule = scheduled.get_state(vs);
  CHECK_FALSE(from_schedule.learning_rate);
  other.set_state(from_schedule, copies(vs));
  CHECK(other.learning_rate() == 0.1);
  CHECK(other.iterations() == 3);
}

TEST_CASE("optimizer state: a bad state is refused, naming the optimizer, variable and slot, and changes nothing",
          "[optim]") {
  opt::Adam a(0.01);
  const auto va = dense_variables(Device::cpu());
  step(a, va, 0);
  const opt::OptimizerState good = a.get_state(va);

  opt::Adam b(0.02);
  const auto vb = copies(va);
  step(b, vb, 5);
  const Tensor m_before = b.get_slot(vb[0], "m").clone();
  auto unchanged = [&] {
    return b.iterations() == 1 && b.learning_rate() == 0.02 && bitwise_equal(b.get_slot(vb[0], "m"), m_before);
  };
  auto with = [&](const std::function<void(opt::OptimizerState&)>& edit) {
    opt::OptimizerState s = good;
    edit(s);
    return s;
  };

  const auto missing = with([](opt::OptimizerState& s) { s.slots.pop_back(); });  // dense/bias/v
  CHECK_THROWS_AS(b.set_state(missing, vb), ValueError);
  CHECK_THROWS_WITH(b.set_state(missing, vb), Catch::Contains("Adam") && Catch::Contains("slot 'v'") &&
                                                  Catch::Contains("variable 'dense/bias'") &&
                                                  Catch::Contains("missing"));
  CHECK(unchanged());

  const auto unexpected =
      with([](opt::OptimizerState& s) { s.slots.emplace_back("dense/kernel/v_hat", zeros({3, 4})); });
  CHECK_THROWS_AS(b.set_state(unexpected, vb), ValueError);
  CHECK_THROWS_WITH(b.set_state(unexpected, vb), Catch::Contains("Adam") && Catch::Contains("dense/kernel/v_hat"));
  CHECK(unchanged());

  const auto shape = with([](opt::OptimizerState& s) { s.slots[1].second = zeros({4, 3}); });
  CHECK_THROWS_AS(b.set_state(shape, vb), ShapeError);
  CHECK_THROWS_WITH(b.set_state(shape, vb), Catch::Contains("Adam") && Catch::Contains("slot 'v'") &&
                                                Catch::Contains("'dense/kernel'") && Catch::Contains("[4, 3]") &&
                                                Catch::Contains("[3, 4]"));
  CHECK(unchanged());

  const auto dtype = with([](opt::OptimizerState& s) { s.slots[2].second = s.slots[2].second.astype(kFloat32); });
  CHECK_THROWS_AS(b.set_state(dtype, vb), DTypeError);
  CHECK_THROWS_WITH(b.set_state(dtype, vb), Catch::Contains("Adam") && Catch::Contains("slot 'm'") &&
                                                Catch::Contains("'dense/bias'") && Catch::Contains("float32") &&
                                                Catch::Contains("float64"));
  CHECK(unchanged());

  const auto twice = with([](opt::OptimizerState& s) { s.slots.push_back(s.slots[0]); });
  CHECK_THROWS_WITH(b.set_state(twice, vb), Catch::Contains("given twice"));
  const auto negative = with([](opt::OptimizerState& s) { s.iterations = -1; });
  CHECK_THROWS_AS(b.set_state(negative, vb), ValueError);
  const auto undefined = with([](opt::OptimizerState& s) { s.slots[0].second = Tensor(); });
  CHECK_THROWS_AS(b.set_state(undefined, vb), ValueError);
  CHECK(unchanged());

  // the variables themselves: named, each name once
  const std::vector<Variable> unnamed = {Variable(zeros({2}))};
  CHECK_THROWS_WITH(b.get_state(unnamed), Catch::Contains("no name"));
  CHECK_THROWS_WITH(b.set_state(good, {vb[0], Variable(vb[1].clone(), "dense/kernel")}),
                    Catch::Contains("two variables are named 'dense/kernel'"));
  CHECK(unchanged());
}

TEST_CASE("optimizer state: a slot that slot_names() does not declare is not exported silently", "[optim]") {
  class Accumulating : public opt::Optimizer {
   public:
    explicit Accumulating(bool declare) : Optimizer("Accumulating", 0.1, {}), declare_(declare) {}
    std::vector<std::string> slot_names() const override {
      if (declare_) return {"sum"};
      return {};
    }

   protected:
    void update_step(const Tensor& grad, Variable& variable, double lr) override {
      slot(variable, "sum").add_(grad);
      variable.assign_sub(slot(variable, "sum") * lr);
    }

   private:
    bool declare_;
  };
  const auto vs = dense_variables(Device::cpu());
  Accumulating silent(false), declared(true);
  step(silent, vs, 0);
  CHECK_THROWS_AS(silent.get_state(vs), ValueError);
  CHECK_THROWS_WITH(silent.get_state(vs), Catch::Contains("Accumulating") && Catch::Contains("'sum'") &&
                                              Catch::Contains("slot_names()"));
  step(declared, vs, 0);
  CHECK(declared.get_state(vs).slots.size() == 2);
}

// ================================================================ model checkpoints

TEST_CASE("a run checkpointed after 2 epochs and resumed by a fresh model equals 4 epochs, bitwise") {
  const Data d = three_classes(96);
  for (const Device& device : devices()) {
    INFO("on " << device.str());
    Scratch dir;
    auto whole = net(device);
    whole->fit(d.x, d.y, run(4));

    auto first = net(device);
    first->fit(d.x, d.y, run(2));
    const std::string path = dir / "ckpt.safetensors";
    first->save_checkpoint(path);

    // a new model and a new optimizer, as after a restart: built, then loaded
    auto resumed = net(device);
    resumed->build({-1, 4});
    resumed->load_checkpoint(path);
    CHECK(resumed->epochs_trained() == 2);
    CHECK(resumed->optimizer().iterations() == first->optimizer().iterations());
    CHECK(Snapshot(*resumed).offsets == Snapshot(*first).offsets);
    const History h = resumed->fit(d.x, d.y, run(4, 2));
    CHECK(h.epoch == std::vector<int>{2, 3});
    CHECK(same_weights(*resumed, *whole));
    CHECK(resumed->optimizer().iterations() == whole->optimizer().iterations());

    // weights alone are not enough: the optimizer starts over and the shuffles and masks repeat
    auto weights_only = net(device);
    weights_only->build({-1, 4});
    weights_only->load_weights(path);
    weights_only->fit(d.x, d.y, run(4, 2));
    CHECK_FALSE(same_weights(*weights_only, *whole));
  }
}

namespace {

// A model trained for one epoch on 48 examples, and its checkpoint in a folder of its own.
struct Saved {
  Scratch dir;
  Data d = three_classes(48);
  std::unique_ptr<Sequential> model = net(Device::cpu());
  std::string path = dir / "ckpt.safetensors";
  explicit Saved(const std::map<std::string, std::string>& metadata = {}) {
    model->fit(d.x, d.y, run(1));
    model->save_checkpoint(path, metadata);
  }
};

}  // namespace

TEST_CASE("a checkpoint holds the weights, the optimizer state, each generator and the epochs, named") {
  const Saved saved(std::map<std::string, std::string>{{"note", "mine"}});
  const auto& m = saved.model;
  const std::string& path = saved.path;
  const auto meta = load_safetensors_metadata(path);
  CHECK(meta.at("format") == "tapeflow");
  CHECK(meta.at("checkpoint") == "1");
  CHECK(meta.at("model") == "sequential");
  CHECK(meta.at("optimizer") == "Adam");
  CHECK(meta.at("note") == "mine");
  const auto file = load_safetensors_map(path);
  for (const auto& w : m->weights()) CHECK(bitwise_equal(file.at(w.name()), w));
  CHECK(file.at("__optimizer__/iterations").item<std::int64_t>() == 3);
  CHECK(file.at("__optimizer__/learning_rate").item<double>() == Approx(1e-2));
  CHECK(bitwise_equal(file.at("__optimizer__/block/dense/kernel/m"),
                      m->optimizer().get_slot(m->weights()[0], "m")));
  for (const auto& l : Snapshot::every_layer(*m)) {
    const auto g = file.at("__generator__/" + l->name()).to_vector<std::int64_t>();
    CHECK(static_cast<std::uint64_t>(g[0]) == l->generator().seed());
    CHECK(static_cast<std::uint64_t>(g[1]) == l->generator().offset());
  }
  CHECK(file.count("__generator__/block/dropout") == 1);
  CHECK(file.at("__model__/epochs_trained").item<std::int64_t>() == 1);
  // weights + 2 slots per trainable weight + iterations, learning rate, 5 generators, epochs
  CHECK(file.size() == 4 + 8 + 2 + 5 + 1);

  // saving needs a built, compiled model, and the checkpoint's own metadata keys stay its own
  CHECK_THROWS_WITH(m->save_checkpoint(path, {{"optimizer", "x"}}), Catch::Contains("'optimizer' is reserved"));
  Sequential unbuilt(Dense(2));
  unbuilt.compile("adam", "mse");
  CHECK_THROWS_WITH(unbuilt.save_checkpoint(path), Catch::Contains("not built"));
  Sequential uncompiled(Dense(2));
  uncompiled.build({-1, 3});
  CHECK_THROWS_WITH(uncompiled.save_checkpoint(path), Catch::Contains("compiled"));
  auto reserved_name = std::make_shared<Dense>(2);
  reserved_name->set_name("__dense");
  Sequential odd({reserved_name});
  odd.compile("adam", "mse");
  odd.build({-1, 3});
  CHECK_THROWS_WITH(odd.save_checkpoint(path), Catch::Contains("'__dense/kernel'") && Catch::Contains("\"__\""));
}

TEST_CASE("load_checkpoint refuses every mismatch with the right error, naming model, file and entry, changing "
          "nothing") {
  const Saved fixture;
  const Scratch& dir = fixture.dir;
  const Data& d = fixture.d;
  const auto& saved = fixture.model;
  const std::string& path = fixture.path;

  // the target has its own state, which every failed load must leave alone
  auto target = net(Device::cpu());
  target->fit(d.x, d.y, run(2));
  const Snapshot before(*target);
  auto refused = [&](const std::string& file) {
    INFO(file);
    bool threw = false;
    try {
      target->load_checkpoint(file);
    } catch (const Error& e) {
      threw = true;
      CHECK_THAT(e.what(), Catch::Contains("sequential: load_checkpoint") && Catch::Contains(file));
    }
    CHECK(threw);
    CHECK(before.unchanged(*target));
  };

  // the model: built and compiled, with the same optimizer class
  auto unbuilt = net(Device::cpu());
  CHECK_THROWS_WITH(unbuilt->load_checkpoint(path), Catch::Contains("not built"));
  Sequential uncompiled(std::make_shared<Block>(), std::make_shared<Dropout>(0.2), std::make_shared<Dense>(3));
  uncompiled.build({-1, 4});
  CHECK_THROWS_WITH(uncompiled.load_checkpoint(path), Catch::Contains("compiled"));
  auto sgd = net(Device::cpu(), std::make_shared<opt::SGD>(0.1, 0.9));
  sgd->build({-1, 4});
  CHECK_THROWS_AS(sgd->load_checkpoint(path), ValueError);
  CHECK_THROWS_WITH(sgd->load_checkpoint(path), Catch::Contains("optimizer 'Adam'") && Catch::Contains("'SGD'") &&
                                                    Catch::Contains(path));
  // Adam with amsgrad keeps a slot the file lacks
  opt::AdamOptions amsgrad;
  amsgrad.amsgrad = true;
  auto ams = net(Device::cpu(), std::make_shared<opt::Adam>(amsgrad));
  ams->build({-1, 4});
  const Snapshot ams_before(*ams);
  CHECK_THROWS_AS(ams->load_checkpoint(path), ValueError);
  CHECK_THROWS_WITH(ams->load_checkpoint(path), Catch::Contains("slot 'v_hat'") &&
                                                    Catch::Contains("block/dense/kernel") && Catch::Contains(path));
  CHECK(ams_before.unchanged(*ams));

  // the file
  const std::string weights = dir / "weights.safetensors";
  saved->save_weights(weights);
  CHECK_THROWS_WITH(target->load_checkpoint(weights), Catch::Contains("not a checkpoint"));
  refused(weights);
  CHECK_THROWS_AS(target->load_checkpoint(dir / "none.safetensors"), IOError);
  const std::string cut = dir / "cut.safetensors";
  fs::copy_file(path, cut);
  fs::resize_file(cut, fs::file_size(cut) - 12);
  CHECK_THROWS_AS(target->load_checkpoint(cut), IOError);
  CHECK(before.unchanged(*target));

  // its entries: a weight, a slot, the step counter or a generator missing, unexpected, of another shape or dtype
  using Edit = std::function<void(NamedTensors&)>;
  auto drop = [](const std::string& key) -> Edit {
    return [key](NamedTensors& n) {
      n.erase(std::remove_if(n.begin(), n.end(), [&](const auto& p) { return p.first == key; }), n.end());
    };
  };
  const struct {
    const char* name;
    Edit edit;
    const char* error;
    const char* text;
  } cases[] = {
      {"no_weight", drop("dense/bias"), "ValueError", "missing [dense/bias]"},
      {"no_slot", drop("__optimizer__/dense/bias/v"), "ValueError", "slot 'v' of variable 'dense/bias'"},
      {"no_iterations", drop("__optimizer__/iterations"), "ValueError", "'__optimizer__/iterations'"},
      {"no_generator", drop("__generator__/block/dropout"), "ValueError", "'__generator__/block/dropout'"},
      {"no_epochs", drop("__model__/epochs_trained"), "ValueError", "'__model__/epochs_trained'"},
      {"extra_weight", [](NamedTensors& n) { n.emplace_back("dense_9/kernel", zeros({2})); }, "ValueError",
       "unexpected [dense_9/kernel]"},
      {"extra_slot", [](NamedTensors& n) { n.emplace_back("__optimizer__/dense/bias/v_hat", zeros({3})); },
       "ValueError", "dense/bias/v_hat"},
      {"extra_entry", [](NamedTensors& n) { n.emplace_back("__other__/x", zeros({1})); }, "ValueError",
       "[__other__/x]"},
      {"weight_shape", [](NamedTensors& n) { entry(n, "dense/kernel") = zeros({3, 16}); }, "ShapeError",
       "'dense/kernel' has shape [3, 16]"},
      {"slot_shape", [](NamedTensors& n) { entry(n, "__optimizer__/dense/kernel/m") = zeros({16, 4}); },
       "ShapeError", "slot 'm' of variable 'dense/kernel' has shape [16, 4]"},
      {"slot_dtype", [](NamedTensors& n) { entry(n, "__optimizer__/dense/kernel/v") = zeros({16, 3}, kFloat64); },
       "DTypeError", "slot 'v' of variable 'dense/kernel' is float64"},
      {"weight_dtype", [](NamedTensors& n) { entry(n, "block/dense/bias") = zeros({16}, kFloat64); }, "DTypeError",
       "'block/dense/bias' is float64"},
      {"iterations_dtype", [](NamedTensors& n) { entry(n, "__optimizer__/iterations") = zeros({}, kInt32); },
       "DTypeError", "'__optimizer__/iterations' in"},
      {"generator_shape", [](NamedTensors& n) { entry(n, "__generator__/dense") = zeros({3}, kInt64); },
       "ShapeError", "'__generator__/dense'"},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    const std::string file = edited(path, dir / (std::string(c.name) + ".safetensors"), c.edit);
    try {
      target->load_checkpoint(file);
      FAIL("no error");
    } catch (const ShapeError& e) {
      CHECK(std::string(c.error) == "ShapeError");
      CHECK_THAT(e.what(), Catch::Contains(c.text) && Catch::Contains(file));
    } catch (const DTypeError& e) {
      CHECK(std::string(c.error) == "DTypeError");
      CHECK_THAT(e.what(), Catch::Contains(c.text) && Catch::Contains(file));
    } catch (const ValueError& e) {
      CHECK(std::string(c.error) == "ValueError");
      CHECK_THAT(e.what(), Catch::Contains(c.text) && Catch::Contains(file));
    }
    refused(file);
  }
  // and the same file, untouched, loads
  target->load_checkpoint(path);
  CHECK(same_weights(*target, *saved));
  CHECK(target->epochs_trained() == 1);
}

TEST_CASE("load_weights reads the weights of a checkpoint, and still refuses a weights file with unexpected names") {
  const Saved fixture;
  const Scratch& dir = fixture.dir;
  const auto& saved = fixture.model;
  const std::string& path = fixture.path;

  Sequential plain(std::make_shared<Block>(), std::make_shared<Dropout>(0.2), std::make_shared<Dense>(3, "softmax"));
  plain.build({-1, 4});  // not compiled: weights need no optimizer
  plain.load_weights(path);
  CHECK(same_weights(plain, *saved));

  // without the checkpoint's metadata, its extra entries are unexpected weights
  NamedTensors named = load_safetensors(path);
  const std::string odd = dir / "odd.safetensors";
  save_safetensors(odd, named, {{"format", "tapeflow"}});
  CHECK_THROWS_AS(plain.load_weights(odd), ValueError);
  CHECK_THROWS_WITH(plain.load_weights(odd), Catch::Contains("unexpected [__generator__/block"));
}

// ================================================================ callbacks

TEST_CASE("ModelCheckpoint saves weights by default, and a checkpoint with save_weights_only off") {
  Scratch dir;
  const Data d = three_classes(48);
  auto m = net(Device::cpu());
  FitOptions o = run(2);
  callbacks::ModelCheckpointOptions full;
  full.save_weights_only = false;
  CHECK(callbacks::ModelCheckpointOptions().save_weights_only);
  o.callbacks = {std::make_shared<callbacks::ModelCheckpoint>(dir / "w{epoch}.safetensors"),
                 std::make_shared<callbacks::ModelCheckpoint>(dir / "c{epoch}.safetensors", full)};
  m->fit(d.x, d.y, o);
  CHECK(load_safetensors_metadata(dir / "w2.safetensors").count("checkpoint") == 0);
  CHECK(load_safetensors_map(dir / "w2.safetensors").size() == m->weights().size());
  CHECK(load_safetensors_metadata(dir / "c2.safetensors").at("checkpoint") == "1");

  auto resumed = net(Device::cpu());
  resumed->build({-1, 4});
  CHECK_THROWS_AS(resumed->load_checkpoint(dir / "w2.safetensors"), ValueError);
  resumed->load_checkpoint(dir / "c1.safetensors");
  CHECK(resumed->epochs_trained() == 1);
  resumed->load_checkpoint(dir / "c2.safetensors");
  CHECK(resumed->epochs_trained() == 2);
  CHECK(same_weights(*resumed, *m));
  CHECK(resumed->optimizer().iterations() == m->optimizer().iterations());
}

TEST_CASE("BackupAndRestore: a fit that crashed in epoch 3 resumes in a fresh model and equals the whole run") {
  const Data d = three_classes(96);
  for (const Device& device : devices()) {
    INFO("on " << device.str());
    Scratch dir;
    const std::string backup_dir = dir / "backup";
    auto whole = net(device);
    whole->fit(d.x, d.y, run(4));

    // the first process: a backup each epoch, then a crash in the middle of epoch 2 (0-based)
    auto crashed = net(device);
    auto backup = std::make_shared<callbacks::BackupAndRestore>(backup_dir);
    FitOptions o = run(4);
    o.callbacks = {backup, std::make_shared<Crash>(2)};
    CHECK_THROWS_WITH(crashed->fit(d.x, d.y, o), "simulated crash");
    REQUIRE(fs::exists(backup->path()));
    CHECK(load_safetensors_metadata(backup->path()).at("backup_epoch") == "2");

    // the second process runs the same fit on a new, unbuilt model: it goes on at epoch 2
    auto again = net(device);
    o.callbacks = {std::make_shared<callbacks::BackupAndRestore>(backup_dir)};
    const History h = again->fit(d.x, d.y, o);
    CHECK(h.epoch == std::vector<int>{2, 3});
    CHECK(same_weights(*again, *whole));
    CHECK(again->epochs_trained() == 4);
    // a fit that ends deletes the backup, and the folder it leaves empty
    CHECK_FALSE(fs::exists(backup->path()));
    CHECK_FALSE(fs::exists(backup_dir));
  }
}

TEST_CASE("BackupAndRestore keeps its backup on request, and a finished backup trains nothing more") {
  Scratch dir;
  const Data d = three_classes(48);
  auto m = net(Device::cpu());
  FitOptions o = run(2);
  auto keep = std::make_shared<callbacks::BackupAndRestore>(dir / "b", "epoch", /*delete_checkpoint=*/false);
  o.callbacks = {keep};
  m->fit(d.x, d.y, o);
  REQUIRE(fs::exists(keep->path()));
  CHECK(load_safetensors_metadata(keep->path()).at("backup_epoch") == "2");
  auto next = net(Device::cpu());
  CHECK(next->fit(d.x, d.y, o).epoch.empty());
  CHECK(same_weights(*next, *m));

  CHECK_THROWS_WITH(callbacks::BackupAndRestore(dir / "b", "10"), Catch::Contains("save_freq '10'"));
  CHECK_THROWS_AS(callbacks::BackupAndRestore(""), ValueError);
  // a file there that is no backup (no epoch in it) is refused before the model changes
  auto other = net(Device::cpu());
  other->fit(d.x, d.y, run(1));
  other->save_checkpoint(keep->path());
  auto victim = net(Device::cpu());
  victim->build({-1, 4});
  const Snapshot before(*victim);
  CHECK_THROWS_WITH(victim->fit(d.x, d.y, o), Catch::Contains("backup_epoch"));
  CHECK(before.unchanged(*victim));
}

// ================================================================ README

TEST_CASE("README: saving and resuming training") {
  Scratch dir;
  const Data data = three_classes(64);
  const Tensor x = data.x, y = data.y;
  const std::string backup = dir / "backup", ckpt = dir / "ckpt.safetensors";
  auto make_model = [] {
    auto model = std::make_unique<Sequential>(Dense(32, "relu"), Dropout(0.5), Dense(3, "softmax"));
    model->compile(std::make_shared<optimizers::Adam>(1e-3), "sparse_categorical_crossentropy");
    return model;
  };
  std::unique_ptr<Sequential> model = make_model();
  // --- README begins (prints one line per epoch)
  FitOptions options;
  options.epochs = 2;
  options.callbacks = {std::make_shared<callbacks::BackupAndRestore>(backup)};
  model->fit(x, y, options);  // killed in epoch 2? the same call, run again, resumes there

  model->save_checkpoint(ckpt);  // weights, optimizer state, generators, epochs trained
  auto fresh = make_model();     // the same code, an optimizer of the same class
  fresh->build({-1, 4});
  fresh->load_checkpoint(ckpt);
  options.callbacks = {};
  options.initial_epoch = 2;  // the epochs done
  options.epochs = 4;
  fresh->fit(x, y, options);
  // --- README ends
  CHECK(fresh->epochs_trained() == 4);
  CHECK(fresh->optimizer().iterations() == 8);
}
