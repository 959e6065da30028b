// Model and Sequential: Keras's training loop on GradientTape, BatchIterator and safetensors.
#include "tapeflow/model.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <set>
#include <utility>

#include "tapeflow/callbacks.hpp"
#include "tapeflow/data.hpp"
#include "tapeflow/gradient_tape.hpp"
#include "tapeflow/observer.hpp"
#include "tapeflow/safetensors.hpp"
#include "summary_text.hpp"

namespace tapeflow {
namespace {

using Clock = std::chrono::steady_clock;

// Keras's number format in progress lines.
std::string format_value(double v) { return std::abs(v) > 1e-3 ? fmt::format("{:.4f}", v) : fmt::format("{:.4e}", v); }

std::string format_eta(double seconds) {
  const auto s = static_cast<long long>(seconds);
  if (s >= 3600) return fmt::format("{}:{:02d}:{:02d}", s / 3600, (s % 3600) / 60, s % 60);
  if (s >= 60) return fmt::format("{}:{:02d}", s / 60, s % 60);
  return fmt::format("{}s", s);
}

std::string format_per_step(double seconds) {
  if (seconds >= 1) return fmt::format("{:.0f}s/step", seconds);
  if (seconds >= 1e-3) return fmt::format("{:.0f}ms/step", seconds * 1e3);
  return fmt::format("{:.0f}us/step", seconds * 1e6);
}

// Keras's progress output: a bar redrawn in place on a terminal (verbose 1), otherwise one
// line when the epoch ends. Nothing is printed per step unless stdout is a terminal.
class Progress {
 public:
  Progress(std::int64_t target, int verbose) : target_(target), start_(Clock::now()) {
    live_ = verbose == 1 && isatty(fileno(stdout));
    quiet_ = verbose == 0;
  }

  // `logs()` gives the batch's logs (reading a device's metrics): called only when drawing.
  template <class LogsFn>
  void update(std::int64_t step, const LogsFn& logs, const std::vector<std::string>& keys) {
    // the last step is drawn by finish(), with the validation metrics
    if (!live_ || step >= target_) return;
    const auto now = Clock::now();
    if (now - last_draw_ < std::chrono::milliseconds(50)) return;
    last_draw_ = now;
    const double elapsed = seconds(now);
    std::string line = fmt::format("\r{}/{} {} - ETA: {}", step, target_, bar(step),
                                   format_eta(elapsed / double(step) * double(target_ - step)));
    line += values(logs(), keys);
    // pad over the remains of a longer previous line
    if (line.size() < width_) line.append(width_ - line.size(), ' ');
    width_ = std::max(width_, line.size());
    std::fputs(line.c_str(), stdout);
    std::fflush(stdout);
  }

  // The epoch's last line, with the validation metrics.
  void finish(std::int64_t steps, const Logs& logs, const std::vector<std::string>& keys) {
    if (quiet_) return;
    const double elapsed = seconds(Clock::now());
    const double per_step = elapsed / double(std::max<std::int64_t>(steps, 1));
    std::string line =
        live_ ? fmt::format("\r{}/{} {} - {:.0f}s {}", steps, target_, bar(steps), elapsed, format_per_step(per_step))
              : fmt::format("{}/{} - {:.0f}s {}", steps, target_, elapsed, format_per_step(per_step));
    line += values(logs, keys);
    if (line.size() < width_) line.append(width_ - line.size(), ' ');
    std::fputs((line + "\n").c_str(), stdout);
    std::fflush(stdout);
  }

 private:
  double seconds(Clock::time_point t) const { return std::chrono::duration<double>(t - start_).count(); }

  std::string bar(std::int64_t step) const {
    constexpr std::int64_t kWidth = 30;
    const std::int64_t filled = target_ > 0 ? kWidth * step / target_ : kWidth;
    std::string b = "[" + std::string(static_cast<std::size_t>(filled), '=');
    if (step < target_ && filled > 0) b.back() = '>';
    return b + std::string(static_cast<std::size_t>(kWidth - filled), '.') + "]";
  }

  // `keys` first, in their order, then whatever else a custom train_step logged.
  static std::string values(const Logs& logs, const std::vector<std::string>& keys) {
    std::string s;
    for (const auto& k : keys) {
      const auto it = logs.find(k);
      if (it != logs.end()) s += fmt::format(" - {}: {}", k, format_value(it->second));
    }
    for (const auto& [k, v] : logs) {
      if (std::find(keys.begin(), keys.end(), k) == keys.end()) s += fmt::format(" - {}: {}", k, format_value(v));
    }
    return s;
  }

  std::int64_t target_;
  Clock::time_point start_, last_draw_{};
  bool live_ = false, quiet_ = false;
  std::size_t width_ = 0;
};

// Keys in Keras's display order: loss, the metrics, then their val_ twins.
std::vector<std::string> display_keys(const std::vector<MetricPtr>& metrics, bool validation) {
  std::vector<std::string> keys;
  for (const auto& m : metrics) keys.push_back(m->name());
  if (validation) {
    for (const auto& m : metrics) keys.push_back("val_" + m->name());
  }
  return keys;
}

std::vector<Tensor> as_tensors(const std::vector<Variable>& vars) { return {vars.begin(), vars.end()}; }

// Keras raises on empty data rather than returning empty logs: `what` [0, ...] is a ValueError.
void require_examples(const std::string& model, const char* method, const std::string& what, const Tensor& t) {
  if (t.defined() && t.rank() > 0 && t.dim(0) == 0) {
    throw ValueError(fmt::format("{}: {}: {} has no examples (shape {})", model, method, what, shape_str(t.shape())));
  }
}

// x and y of fit / evaluate: x [n, ...] and y [n, ...] (y may be undefined: a custom
// train_step without labels), checked before any training, naming the method
void require_pairs(const std::string& model, const char* method, const std::string& what, const Tensor& x, const Tensor& y) {
  if (!x.defined()) throw ValueError(fmt::format("{}: {}: {}x is undefined", model, method, what));
  if (x.rank() == 0) {
    throw ShapeError(fmt::format("{}: {}: {}x must have a batch axis, got a scalar", model, method, what));
  }
  if (!y.defined()) return;
  if (y.rank() == 0 || y.dim(0) != x.dim(0)) {
    throw ShapeError(fmt::format("{}: {}: {}x and y must have as many examples: x {}, y {}", model, method, what,
                                 shape_str(x.shape()), shape_str(y.shape())));
  }
}

// The inputs and targets of fit / evaluate: one tensor per input and per output, each [n, ...]
// with the same n. One input and one target are checked as before, named x and y.
void require_lists(const std::string& model, const char* method, const std::string& what, const std::vector<Tensor>& xs,
                   const std::vector<Tensor>& ys) {
  if (xs.empty()) throw ValueError(fmt::format("{}: {}: {}x has no tensors", model, method, what));
  if (xs.size() == 1 && ys.size() <= 1) {
    require_pairs(model, method, what, xs[0], ys.empty() ? Tensor() : ys[0]);
    return;
  }
  auto check = [&](const Tensor& t, const char* kind, std::size_t i) {
    if (!t.defined()) throw ValueError(fmt::format("{}: {}: {}{}[{}] is undefined", model, method, what, kind, i));
    if (t.rank() == 0 || t.dim(0) != xs[0].dim(0)) {
      std::string shapes;
      for (std::size_t j = 0; j < xs.size(); ++j) shapes += fmt::format(" x[{}] {}", j, shape_str(xs[j].shape()));
      for (std::size_t j = 0; j < ys.size(); ++j) shapes += fmt::format(" y[{}] {}", j, shape_str(ys[j].shape()));
      throw ShapeError(fmt::format("{}: {}: {}inputs and targets must have as many examples:{}", model, method, what,
                                   shapes));
    }
  };
  if (!xs[0].defined()) throw ValueError(fmt::format("{}: {}: {}x[0] is undefined", model, method, what));
  for (std::size_t i = 0; i < xs.size(); ++i) check(xs[i], "x", i);
  for (std::size_t i = 0; i < ys.size(); ++i) check(ys[i], "y", i);
}

// Every tensor of a batch on the model's device (a copy only when it is elsewhere)
std::vector<Tensor> on_device(const std::vector<Tensor>& data, Device dev) {
  std::vector<Tensor> out;
  out.reserve(data.size());
  for (const auto& t : data) out.push_back(t.to(dev));
  return out;
}

// FitOptions' validation arrays: validation_data_list, else validation_data (checked; none: empty)
void validation_arrays(const std::string& model, const FitOptions& options, std::vector<Tensor>& x_val,
                       std::vector<Tensor>& y_val) {
  if (options.validation_data_list) {
    std::tie(x_val, y_val) = *options.validation_data_list;
  } else if (options.validation_data) {
    x_val = {options.validation_data->first};
    if (options.validation_data->second.defined()) y_val = {options.validation_data->second};
  }
  if (!x_val.empty() || options.validation_data_list) {
    require_lists(model, "fit", "validation_data's ", x_val, y_val);
    require_examples(model, "fit", "validation_data's x", x_val[0]);
  }
}

std::string shape_text(const Shape& s) {
  if (s.empty()) return "?";
  std::string out = "(";
  for (std::size_t i = 0; i < s.size(); ++i) {
    out += i ? ", " : "";
    out += s[i] < 0 ? "None" : std::to_string(s[i]);
  }
  return out + (s.size() == 1 ? ",)" : ")");
}

// Keras's readable_memory_size: "1.55 MB".
std::string readable_bytes(double bytes) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  return fmt::format("{:.2f} {}", bytes, units[u]);
}

std::int64_t weight_bytes(const std::vector<Variable>& ws) {
  std::int64_t n = 0;
  for (const auto& w : ws) n += static_cast<std::int64_t>(w.nbytes());
  return n;
}

std::int64_t weight_count(const std::vector<Variable>& ws) {
  std::int64_t n = 0;
  for (const auto& w : ws) n += w.size();
  return n;
}

}  // namespace

std::string detail::with_commas(std::int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return (n < 0 ? "-" : "") + out;
}

std::vector<std::string> detail::param_totals(const Model& model) {
  const std::pair<const char*, std::vector<Variable>> groups[] = {
      {"Total params: ", model.weights()},
      {"Trainable params: ", model.trainable_weights()},
      {"Non-trainable params: ", model.non_trainable_weights()}};
  std::vector<std::string> lines;
  for (const auto& [title, ws] : groups) {
    lines.push_back(
        fmt::format("{}{} ({})", title, with_commas(weight_count(ws)), readable_bytes(double(weight_bytes(ws)))));
  }
  return lines;
}

namespace {

// A cell of Keras's summary table as rich lays it out in `width` characters: wrapped greedily at
// spaces; a word too long for a line gets a line of its own, cut to width - 1 characters and
// "…". Each line is padded to the width (on the left when right-aligned). ASCII text assumed:
// a character is a column.
std::vector<std::string> wrap_cell(const std::string& text, std::size_t width, bool right) {
  std::vector<std::string> lines(1);
  std::size_t used = 0;  // columns taken on the last line, trailing spaces included (rich's)
  for (std::size_t start = 0; start < text.size();) {
    const std::size_t stop = std::min(text.find(' ', start), text.size());
    const std::size_t end = std::min(text.find_first_not_of(' ', stop), text.size());
    if (used + (stop - start) > width && start > 0) {
      lines.emplace_back();
      used = 0;
    }
    lines.back() += text.substr(start, end - start);
    used += end - start;
    start = end;
  }
  for (auto& line : lines) {
    line.erase(line.find_last_not_of(' ') + 1);
    std::size_t columns = line.size();
    if (columns > width) {
      line = line.substr(0, width - 1) + "\u2026";
      columns = width;
    }
    const std::string pad(width - columns, ' ');
    line = right ? pad + line : line + pad;
  }
  return lines;
}

}  // namespace

// rich's table in ASCII, as Keras prints it: `cells` are the columns' widths with their padding
// (one space either side), rows[0] the header; every row ends with a rule.
void detail::print_ascii_table(std::ostream& os, const std::vector<std::size_t>& cells, const std::vector<bool>& right,
                       const std::vector<std::vector<std::string>>& rows) {
  std::size_t inner = cells.size() - 1;
  std::string rule = "|";
  for (std::size_t c = 0; c < cells.size(); ++c) {
    inner += cells[c];
    rule += std::string(cells[c], '-') + (c + 1 < cells.size() ? "+" : "|");
  }
  const std::string edge = "+" + std::string(inner, '-') + "+";
  os << edge << '\n';
  for (std::size_t r = 0; r < rows.size(); ++r) {
    if (r > 0) os << rule << '\n';
    std::vector<std::vector<std::string>> wrapped;
    std::size_t height = 1;
    for (std::size_t c = 0; c < cells.size(); ++c) {
      wrapped.push_back(wrap_cell(rows[r][c], cells[c] - 2, right[c]));
      height = std::max(height, wrapped.back().size());
    }
    for (std::size_t i = 0; i < height; ++i) {
      os << '|';
      for (std::size_t c = 0; c < cells.size(); ++c) {
        os << ' ' << (i < wrapped[c].size() ? wrapped[c][i] : std::string(cells[c] - 2, ' ')) << " |";
      }
      os << '\n';
    }
  }
  os << edge << '\n';
}

// ================================================================ History

const std::vector<double>& History::operator[](const std::string& key) const {
  const auto it = history.find(key);
  if (it == history.end()) {
    std::string keys;
    for (const auto& [k, v] : history) keys += (keys.empty() ? "" : ", ") + k;
    throw ValueError(fmt::format("History: no metric '{}' (there are: {})", key, keys));
  }
  return it->second;
}

// ================================================================ Model: the network

std::uint64_t Model::layer_seed(std::uint64_t seed, std::size_t index) {
  // splitmix64 of (seed, index): distinct, well-mixed seeds per layer
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ull * (index + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void Model::set_seed(std::uint64_t seed) {
  seed_ = seed;
  const auto ls = layers();
  for (std::size_t i = 0; i < ls.size(); ++i) ls[i]->set_seed(layer_seed(seed, i));
}

void Model::name_layer(layers::Layer& layer, const std::vector<LayerPtr>& others, std::size_t index) const {
  if (!layer.seeded() && !layer.built()) layer.set_seed(layer_seed(seed_, index));
  if (!layer.name().empty()) return;
  // a name is taken by another layer of the model, or by the weights of a model inside it (a
  // Functional model, built and named when it was made, keeps "dense/kernel" inside a ModelLayer):
  // Keras's names are unique across models, so save_weights never meets two "dense/kernel"
  auto taken = [&](const std::string& n) {
    const std::string prefix = n + "/";
    return std::any_of(others.begin(), others.end(), [&](const LayerPtr& l) {
      if (l->name() == n) return true;
      if (l.get() == &layer) return false;  // its own weights may already carry the name it gets
      const auto ws = l->weights();
      return std::any_of(ws.begin(), ws.end(), [&](const Variable& w) { return w.name().rfind(prefix, 0) == 0; });
    });
  };
  const std::string base = layer.default_name();
  std::string candidate = base;
  for (int k = 1; taken(candidate); ++k) candidate = base + "_" + std::to_string(k);
  layer.set_name(candidate);
}

void Model::prepare_layers() {
  const auto ls = layers();
  for (std::size_t i = 0; i < ls.size(); ++i) {
    if (ls[i]->name().empty() || !ls[i]->seeded()) name_layer(*ls[i], ls, i);
    if (device_ && !ls[i]->built()) ls[i]->set_device(*device_);
  }
}

Tensor Model::operator()(const Tensor& x, bool training) {
  prepare_layers();
  output_masks_.clear();
  return call(x, training);
}

Tensor Model::operator()(const Tensor& x, const Tensor& mask, bool training) {
  prepare_layers();
  output_masks_.clear();
  return call_masked(x, mask, training);
}

Tensor Model::call_masked(const Tensor& x, const Tensor&, bool training) { return call(x, training); }

std::vector<Tensor> Model::call_multi(const std::vector<Tensor>& xs, bool training) {
  if (xs.size() != 1) throw ValueError(fmt::format("{}: takes 1 input, got {}", name_, xs.size()));
  return {call(xs[0], training)};
}

std::vector<Tensor> Model::operator()(const std::vector<Tensor>& xs, bool training) {
  prepare_layers();
  output_masks_.clear();
  return call_multi(xs, training);
}

void Model::set_output_mask(const Tensor& y, const Tensor& mask) {
  if (y.defined() && mask.defined()) output_masks_.emplace_back(y.id(), mask);
}

Tensor Model::output_mask(const Tensor& y) const {
  if (!y.defined()) return Tensor();
  for (const auto& [id, mask] : output_masks_)
    if (id == y.id()) return mask;
  return Tensor();
}

void Model::set_device(Device device) {
  for (const auto& l : layers()) {
    if (l->built() && l->device() != device) {
      throw ValueError(fmt::format("{}: set_device({}): layer '{}' is already built on {}; set the device before "
                                   "the model is built",
                                   name_, device.str(), l->name(), l->device().str()));
    }
  }
  device_ = device;
}

Device Model::device() const {
  if (device_) return *device_;
  for (const auto& l : layers())
    if (l->built() && !l->weights().empty()) return l->device();
  return Device::cpu();
}

Device Model::batch_device(const Tensor& x) const {
  if (device_) return *device_;
  for (const auto& l : layers())
    if (l->built()) return l->device();
  return x.device();
}

void Model::build(const Shape& input_shape) {
  if (input_shape.empty()) throw ShapeError(fmt::format("{}: build needs an input shape with a batch axis", name_));
  Shape one = input_shape;
  one[0] = 1;
  for (auto d : one) {
    if (d < 0)
      throw ShapeError(fmt::format("{}: build: only the batch axis may be None in {}", name_, shape_str(input_shape)));
  }
  NoRecording no_tape;
  (*this)(zeros(one, kFloat32, device()), false);
}

bool Model::built() const {
  const auto ls = layers();
  return !ls.empty() && std::all_of(ls.begin(), ls.end(), [](const LayerPtr& l) { return l->built(); });
}

std::vector<Variable> Model::weights() const {
  std::vector<Variable> out;
  for (const auto& l : layers()) layers::detail::append_unique(out, l->weights());
  return out;
}

std::vector<Variable> Model::trainable_weights() const {
  std::vector<Variable> out;
  for (const auto& l : layers()) layers::detail::append_unique(out, l->trainable_weights());
  return out;
}

std::vector<Variable> Model::non_trainable_weights() const {
  std::vector<Variable> out;
  for (const auto& l : layers()) layers::detail::append_unique(out, l->non_trainable_weights());
  return out;
}

std::int64_t Model::count_params() const { return weight_count(weights()); }

std::vector<Tensor> Model::get_weights() const { return layers::detail::get_weights(weights()); }

void Model::set_weights(const std::vector<Tensor>& values) { layers::detail::set_weights(name_, weights(), values); }

std::vector<Tensor> Model::losses() const {
  std::vector<const layers::Layer*> roots;
  for (const auto& l : layers()) roots.push_back(l.get());
  return layers::detail_losses(roots);
}

namespace {
// y + the sum of `extra` (the layers' losses), as Keras 3's compute_loss adds them. An unreduced
// y (a loss with Reduction::None) cannot take them: Keras's ops.sum of the list fails there, and
// adding them to every element would weigh them by the batch size. `what` names the loss.
Tensor plus_losses(Tensor y, const std::vector<Tensor>& extra, const std::string& model,
                   const std::function<std::string()>& what) {
  if (!extra.empty() && y.rank() != 0) {
    throw ValueError(fmt::format("{}: compute_loss: {} gives {} values, not a scalar, and the model's own losses "
                                 "(regularization penalties, add_loss) cannot be added to them, as in Keras; "
                                 "compile with a reducing loss (reduction sum_over_batch_size, sum, mean or "
                                 "mean_with_sample_weight)",
                                 model, what(), shape_str(y.shape())));
  }
  for (const auto& l : extra) y = y + l;
  return y;
}

// The loss a Mean tracker logs: an unreduced loss (Reduction::None) counts by its mean, as
// Keras's loss tracker reduces it (its gradient is that of its sum, the tape's).
Tensor logged(const Tensor& loss) { return loss.rank() == 0 ? loss : mean(loss); }

// Sets a flag for a scope, then puts back what it was (fit's deferred logs: evaluate within
// fit, or train_on_batch within a callback, set their own).
class ScopedFlag {
 public:
  ScopedFlag(bool& flag, bool value) : flag_(flag), old_(flag) { flag_ = value; }
  ~ScopedFlag() { flag_ = old_; }
  ScopedFlag(const ScopedFlag&) = delete;
  ScopedFlag& operator=(const ScopedFlag&) = delete;

 private:
  bool& flag_;
  bool old_;
};

// "loss 'mean_squared_error' (reduction 'none')"
std::string loss_desc(const losses::Loss& loss) {
  return fmt::format("loss '{}' (reduction '{}')", loss.name(), losses::reduction_name(loss.reduction()));
}
}  // namespace

LayerPtr Model::get_layer(const std::string& name) const {
  const auto ls = layers();
  std::string names;
  for (const auto& l : ls) {
    if (l->name() == name) return l;
    names += (names.empty() ? "" : ", ") + (l->name().empty() ? "<unnamed " + l->class_name() + ">" : l->name());
  }
  throw ValueError(fmt::format("{}: get_layer: no layer named '{}' (the layers: {})", name_, name,
                               names.empty() ? std::string("none") : names));
}

LayerPtr Model::get_layer(std::size_t index) const {
  const auto ls = layers();
  if (index >= ls.size()) {
    throw ValueError(fmt::format("{}: get_layer: index {} is out of range: the model has {} layers", name_, index,
                                 ls.size()));
  }
  return ls[index];
}

void Model::summary(std::ostream& os) const {
  if (!built()) {
    throw ValueError(
        fmt::format("{}: summary: the model is not built yet; call build(input_shape) or run it on a batch", name_));
  }
  // Keras 3's table for a model without a graph to show (Sequential, a subclass): three columns
  // in 88 characters, as rich prints it to a stream that is not a terminal
  std::vector<std::vector<std::string>> rows = {{"Layer (type)", "Output Shape", "Param #"}};
  for (const auto& l : layers()) {
    rows.push_back({l->name() + " (" + l->class_name() + ")", shape_text(l->output_shape()),
                    detail::with_commas(l->count_params())});
  }
  os << "Model: \"" << name_ << "\"\n";
  detail::print_ascii_table(os, {38, 29, 17}, {false, false, true}, rows);
  for (const auto& line : detail::param_totals(*this)) os << ' ' << line << '\n';
}

// ================================================================ Model: training

// The metrics of compile() by name: ValueError for "loss" or a name listed twice; a weighted
// metric whose name an unweighted one has is named "weighted_<name>" (Keras's).
// `output`: the output's index in a model compiled with several, else -1.
std::vector<MetricPtr> make_metrics(const std::string& model, const std::vector<std::string>& names,
                                    const std::vector<std::string>& unweighted, bool weighted, int output) {
  std::vector<MetricPtr> out;
  std::set<std::string> seen;
  const char* kind = weighted ? "weighted metric" : "metric";
  for (const auto& m : names) {
    if (m == "loss") {
      throw ValueError(output < 0 ? fmt::format("{}: compile: 'loss' is not a metric name; the loss is always tracked "
                                                "as 'loss'",
                                                model)
                                  : fmt::format("{}: compile: 'loss' is not a metric name (output {}); each output's "
                                                "loss is tracked as '<output>_loss'",
                                                model, output));
    }
    if (!seen.insert(m).second) {
      throw ValueError(fmt::format("{}: compile: {} '{}' is listed twice{}", model, kind, m,
                                   output < 0 ? "" : fmt::format(" for output {}", output)));
    }
    out.push_back(metrics::get(m));
    if (weighted && std::find(unweighted.begin(), unweighted.end(), m) != unweighted.end()) {
      out.back()->set_name("weighted_" + out.back()->name());
    }
  }
  return out;
}

void Model::compile(std::shared_ptr<optimizers::Optimizer> optimizer, std::shared_ptr<losses::Loss> loss,
                    const std::vector<std::string>& metric_names, const std::vector<std::string>& weighted_names) {
  if (!optimizer) throw ValueError(fmt::format("{}: compile: the optimizer is null", name_));
  optimizer_ = std::move(optimizer);
  loss_ = std::move(loss);
  loss_weight_ = 1.0;
  output_losses_.clear();
  output_loss_trackers_.clear();
  output_metrics_.clear();
  output_weighted_metrics_.clear();
  metrics_ = make_metrics(name_, metric_names, {}, false, -1);
  weighted_metrics_ = make_metrics(name_, weighted_names, metric_names, true, -1);
}

void Model::compile(const std::string& optimizer) { compile(optimizers::get(optimizer)); }

OutputLoss::OutputLoss(std::shared_ptr<losses::Loss> loss_, std::vector<std::string> metrics_, double weight_,
                       std::vector<std::string> weighted_metrics_)
    : loss(std::move(loss_)),
      metrics(std::move(metrics_)),
      weight(weight_),
      weighted_metrics(std::move(weighted_metrics_)) {}
OutputLoss::OutputLoss(const std::string& loss_, std::vector<std::string> metrics_, double weight_,
                       std::vector<std::string> weighted_metrics_)
    : OutputLoss(losses::get(loss_), std::move(metrics_), weight_, std::move(weighted_metrics_)) {}

void Model::compile(std::shared_ptr<optimizers::Optimizer> optimizer, std::vector<OutputLoss> outputs) {
  if (outputs.empty()) throw ValueError(fmt::format("{}: compile: no output losses given", name_));
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    if (!outputs[i].loss) throw ValueError(fmt::format("{}: compile: the loss of output {} is null", name_, i));
    if (!std::isfinite(outputs[i].weight)) {
      throw ValueError(fmt::format("{}: compile: the loss weight of output {} is {}", name_, i, outputs[i].weight));
    }
  }
  if (outputs.size() == 1) {
    compile(std::move(optimizer), outputs[0].loss, outputs[0].metrics, outputs[0].weighted_metrics);
    loss_weight_ = outputs[0].weight;
    return;
  }
  std::vector<std::vector<MetricPtr>> per_output, weighted_per_output;
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    const int at = static_cast<int>(i);
    per_output.push_back(make_metrics(name_, outputs[i].metrics, {}, false, at));
    weighted_per_output.push_back(make_metrics(name_, outputs[i].weighted_metrics, outputs[i].metrics, true, at));
  }
  compile(std::move(optimizer));
  output_losses_ = std::move(outputs);
  output_metrics_ = std::move(per_output);
  output_weighted_metrics_ = std::move(weighted_per_output);
  for (std::size_t i = 0; i < output_losses_.size(); ++i) {
    output_loss_trackers_.push_back(std::make_shared<metrics::Mean>(fmt::format("output_{}_loss", i)));
  }
  name_output_metrics();
}

void Model::compile(const std::string& optimizer, std::vector<OutputLoss> outputs) {
  compile(optimizers::get(optimizer), std::move(outputs));
}

void Model::name_output_metrics() {
  if (output_losses_.empty()) return;
  std::vector<std::string> names = output_names();
  names.resize(output_losses_.size());
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i].empty()) names[i] = fmt::format("output_{}", i);
    for (std::size_t j = 0; j < i; ++j) {
      if (names[j] == names[i]) {
        throw ValueError(fmt::format("{}: outputs {} and {} are both named '{}'; their logs would collide", name_, j,
                                     i, names[i]));
      }
    }
  }
  for (std::size_t i = 0; i < names.size(); ++i) {
    output_loss_trackers_[i]->set_name(names[i] + "_loss");
    for (std::size_t k = 0; k < output_metrics_[i].size(); ++k) {
      output_metrics_[i][k]->set_name(names[i] + "_" + output_losses_[i].metrics[k]);
    }
    const auto& unweighted = output_losses_[i].metrics;
    for (std::size_t k = 0; k < output_weighted_metrics_[i].size(); ++k) {
      const std::string& m = output_losses_[i].weighted_metrics[k];
      const bool clash = std::find(unweighted.begin(), unweighted.end(), m) != unweighted.end();
      output_weighted_metrics_[i][k]->set_name(names[i] + (clash ? "_weighted_" : "_") + m);
    }
  }
}

void Model::compile(const std::string& optimizer, const std::string& loss, const std::vector<std::string>& metrics,
                    const std::vector<std::string>& weighted_metrics) {
  compile(optimizers::get(optimizer), losses::get(loss), metrics, weighted_metrics);
}
void Model::compile(std::shared_ptr<optimizers::Optimizer> optimizer, const std::string& loss,
                    const std::vector<std::string>& metrics, const std::vector<std::string>& weighted_metrics) {
  compile(std::move(optimizer), losses::get(loss), metrics, weighted_metrics);
}
void Model::compile(const std::string& optimizer, std::shared_ptr<losses::Loss> loss,
                    const std::vector<std::string>& metrics, const std::vector<std::string>& weighted_metrics) {
  compile(optimizers::get(optimizer), std::move(loss), metrics, weighted_metrics);
}

void Model::require_inputs(const char* method, std::size_t given) const {
  if (given != num_inputs()) {
    throw ValueError(fmt::format("{}: {}: the model takes {} input(s), got {}", name_, method, num_inputs(), given));
  }
}

void Model::require_compiled(const char* what) const {
  if (!compiled()) {
    throw ValueError(
        fmt::format("{}: {}: the model must be compiled first (compile(optimizer, loss, metrics))", name_, what));
  }
}

optimizers::Optimizer& Model::optimizer() const {
  require_compiled("optimizer");
  return *optimizer_;
}

const losses::Loss& Model::loss() const {
  if (!loss_) {
    throw ValueError(
        fmt::format("{}: no loss: compile(optimizer, loss, metrics) with a loss, or compute the loss "
                    "in a custom train_step",
                    name_));
  }
  return *loss_;
}

Tensor Model::compute_loss(const Tensor& y, const Tensor& y_pred, const Tensor& sample_weight) const {
  const Tensor l = loss()(y, y_pred, sample_weight, output_mask(y_pred));
  return plus_losses(loss_weight_ == 1.0 ? l : l * loss_weight_, losses(), name_,
                     [&] { return "the " + loss_desc(loss()); });
}

Tensor Model::compute_loss(const std::vector<Tensor>& ys, const std::vector<Tensor>& y_preds,
                           std::vector<Tensor>* per_output, const Tensor& sample_weight) const {
  if (output_losses_.empty()) {
    if (ys.size() != 1 || y_preds.size() != 1) {
      throw ValueError(fmt::format("{}: compute_loss: compiled with one loss, got {} targets and {} outputs", name_,
                                   ys.size(), y_preds.size()));
    }
    const Tensor l = compute_loss(ys[0], y_preds[0], sample_weight);
    if (per_output) *per_output = {l};
    return l;
  }
  if (ys.size() != output_losses_.size() || y_preds.size() != output_losses_.size()) {
    throw ValueError(fmt::format("{}: compute_loss: compiled with {} output losses, got {} targets and {} outputs",
                                 name_, output_losses_.size(), ys.size(), y_preds.size()));
  }
  Tensor total;
  std::vector<Tensor> per_output_values;
  if (per_output) per_output->clear();
  for (std::size_t i = 0; i < ys.size(); ++i) {
    const Tensor l = (*output_losses_[i].loss)(ys[i], y_preds[i], sample_weight, output_mask(y_preds[i]));
    if (per_output) per_output->push_back(l);
    per_output_values.push_back(l);
    const Tensor weighted = output_losses_[i].weight == 1.0 ? l : l * output_losses_[i].weight;
    total = total.defined() ? total + weighted : weighted;
  }
  return plus_losses(total, losses(), name_, [&] {
    std::string out;
    for (std::size_t i = 0; i < per_output_values.size(); ++i) {
      if (per_output_values[i].rank() != 0) {
        out += fmt::format("{}output {}'s {}", out.empty() ? "" : " and ", i, loss_desc(*output_losses_[i].loss));
      }
    }
    return out;
  });
}

std::vector<MetricPtr> Model::metrics() const {
  std::vector<MetricPtr> out{loss_tracker_};
  out.insert(out.end(), metrics_.begin(), metrics_.end());
  out.insert(out.end(), weighted_metrics_.begin(), weighted_metrics_.end());
  out.insert(out.end(), output_loss_trackers_.begin(), output_loss_trackers_.end());
  for (std::size_t i = 0; i < output_metrics_.size(); ++i) {
    out.insert(out.end(), output_metrics_[i].begin(), output_metrics_[i].end());
    out.insert(out.end(), output_weighted_metrics_[i].begin(), output_weighted_metrics_[i].end());
  }
  return out;
}

void Model::update_metrics(const std::vector<MetricPtr>& unweighted, const std::vector<MetricPtr>& weighted,
                           const Tensor& y, const Tensor& y_pred, const Tensor& sample_weight) const {
  const Tensor mask = output_mask(y_pred);
  for (const auto& m : unweighted) m->update_state(y, y_pred, mask);
  if (weighted.empty()) return;
  // Keras's apply_mask with reduction "sum": the sample weights times the mask
  Tensor w = mask;
  if (sample_weight.defined()) {
    w = mask.defined() ? losses::detail::fit_weights(sample_weight, mask, kFloat64, name_ + ": sample_weight") *
                             mask.astype(kFloat64)
                       : sample_weight;
  }
  for (const auto& m : weighted) m->update_state(y, y_pred, w);
}

void Model::reset_metrics() {
  for (const auto& m : metrics()) m->reset_state();
}

Logs Model::metric_results() const {
  Logs logs;
  for (const auto& m : metrics()) logs[m->name()] = m->result();
  return logs;
}

Logs Model::step_logs() {
  if (!defer_logs_) return metric_results();
  logs_deferred_ = true;
  return {};
}

Logs Model::batch_logs(const Logs& returned, bool deferred) const {
  if (!deferred) return returned;
  Logs logs = metric_results();
  for (const auto& [k, v] : returned) logs[k] = v;  // an override's own keys
  return logs;
}

Logs Model::train_step(const Tensor& x, const Tensor& y) {
  require_compiled("train_step");
  if (!y.defined()) {
    throw ValueError(fmt::format("{}: train_step: y is undefined; fit(x, Tensor()) needs a custom train_step that "
                                 "does without labels",
                                 name_));
  }
  Tensor y_pred, loss;
  std::vector<Variable> vars;
  std::vector<Tensor> grads;
  {
    GradientTape tape;
    y_pred = (*this)(x, /*training=*/true);
    loss = compute_loss(y, y_pred);
    vars = trainable_weights();  // after the forward pass: the first call builds the layers
    grads = tape.gradient(loss, as_tensors(vars));
  }
  optimizer_->apply_gradients(grads, vars);
  loss_tracker_->update_state(logged(loss), static_cast<double>(x.dim(0)));
  update_metrics(metrics_, weighted_metrics_, y, y_pred, Tensor());
  return step_logs();
}

Logs Model::test_step(const Tensor& x, const Tensor& y) {
  require_compiled("test_step");
  if (!y.defined()) {
    throw ValueError(fmt::format("{}: test_step: y is undefined; evaluate(x, Tensor()) needs a custom test_step that "
                                 "does without labels",
                                 name_));
  }
  const Tensor y_pred = (*this)(x, /*training=*/false);
  loss_tracker_->update_state(logged(compute_loss(y, y_pred)), static_cast<double>(x.dim(0)));
  update_metrics(metrics_, weighted_metrics_, y, y_pred, Tensor());
  return step_logs();
}

Logs Model::train_step_multi(const std::vector<Tensor>& xs, const std::vector<Tensor>& ys,
                             const Tensor& sample_weight) {
  if (xs.size() == 1 && ys.size() <= 1 && output_losses_.empty() && !sample_weight.defined()) {
    return train_step(xs[0], ys.empty() ? Tensor() : ys[0]);
  }
  return multi_step(xs, ys, sample_weight, true);
}

Logs Model::test_step_multi(const std::vector<Tensor>& xs, const std::vector<Tensor>& ys,
                            const Tensor& sample_weight) {
  if (xs.size() == 1 && ys.size() <= 1 && output_losses_.empty() && !sample_weight.defined()) {
    return test_step(xs[0], ys.empty() ? Tensor() : ys[0]);
  }
  return multi_step(xs, ys, sample_weight, false);
}

Logs Model::multi_step(const std::vector<Tensor>& xs, const std::vector<Tensor>& ys, const Tensor& sample_weight,
                        bool training) {
  const char* method = training ? "train_step" : "test_step";
  require_compiled(method);
  const std::size_t outputs = output_losses_.empty() ? 1 : output_losses_.size();
  if (ys.size() != outputs) {
    throw ValueError(fmt::format("{}: {}: compiled with {} output loss(es), got {} target(s)", name_, method, outputs,
                                 ys.size()));
  }
  if (output_losses_.empty()) loss();  // ValueError without one
  name_output_metrics();
  std::vector<Tensor> y_preds, per_output;
  Tensor total;
  if (training) {
    std::vector<Variable> vars;
    std::vector<Tensor> grads;
    {
      GradientTape tape;
      y_preds = (*this)(xs, /*training=*/true);
      total = compute_loss(ys, y_preds, &per_output, sample_weight);
      vars = trainable_weights();  // after the forward pass: the first call builds the layers
      grads = tape.gradient(total, as_tensors(vars));
    }
    optimizer_->apply_gradients(grads, vars);
  } else {
    y_preds = (*this)(xs, /*training=*/false);
    total = compute_loss(ys, y_preds, &per_output, sample_weight);
  }
  const auto n = static_cast<double>(xs[0].dim(0));
  loss_tracker_->update_state(logged(total), n);
  if (output_losses_.empty()) {
    update_metrics(metrics_, weighted_metrics_, ys[0], y_preds[0], sample_weight);
  } else {
    for (std::size_t i = 0; i < outputs; ++i) {
      output_loss_trackers_[i]->update_state(logged(per_output[i]), n);
      update_metrics(output_metrics_[i], output_weighted_metrics_[i], ys[i], y_preds[i], sample_weight);
    }
  }
  return step_logs();
}

History Model::fit(const Tensor& x, const Tensor& y, const FitOptions& options) {
  std::vector<Tensor> ys;
  if (y.defined()) ys.push_back(y);
  return fit(std::vector<Tensor>{x}, ys, options);
}

void Model::check_fit_options(const FitOptions& options) const {
  require_compiled("fit");
  if (options.epochs < 0) throw ValueError(fmt::format("{}: fit: epochs must be >= 0, got {}", name_, options.epochs));
  if (options.initial_epoch < 0) {
    throw ValueError(fmt::format("{}: fit: initial_epoch must be >= 0, got {}", name_, options.initial_epoch));
  }
  if (options.validation_freq < 1) {
    throw ValueError(fmt::format("{}: fit: validation_freq must be >= 1, got {}", name_, options.validation_freq));
  }
  if (options.steps_per_epoch < 0 || options.validation_steps < 0) {
    throw ValueError(fmt::format("{}: fit: steps_per_epoch and validation_steps must be >= 0 (0: a whole pass), got "
                                 "{} and {}",
                                 name_, options.steps_per_epoch, options.validation_steps));
  }
  if (options.validation_dataset && (options.validation_data || options.validation_data_list)) {
    throw ValueError(fmt::format("{}: fit: give validation_dataset or validation_data, not both", name_));
  }
  for (std::size_t i = 0; i < options.callbacks.size(); ++i) {
    if (!options.callbacks[i]) throw ValueError(fmt::format("{}: fit: callbacks[{}] is null", name_, i));
  }
}

History Model::fit(const std::vector<Tensor>& xs, const std::vector<Tensor>& ys, const FitOptions& options) {
  check_fit_options(options);
  require_inputs("fit", xs.size());
  require_lists(name_, "fit", "", xs, ys);
  require_examples(name_, "fit", "x", xs[0]);
  std::vector<Tensor> x_train = xs, y_train = ys, x_val, y_val;
  validation_arrays(name_, options, x_val, y_val);
  if (x_val.empty() && !options.validation_dataset && options.validation_split != 0) {
    // the same rows of every tensor: the split point depends on n and the fraction alone
    auto split = [&](std::vector<Tensor>& train, std::vector<Tensor>& val) {
      for (auto& t : train) {
        const TrainValidationSplit parts = train_validation_split(t, Tensor(), options.validation_split);
        val.push_back(parts.x_val);
        t = parts.x_train;
      }
    };
    split(x_train, x_val);
    split(y_train, y_val);
  }
  // per-example weights of the training rows (validation_split took the last rows off x_train)
  Tensor w_train = example_weights(options, ys);
  // the validation rows' weights: validation_sample_weight, or validation_split's share of
  // sample_weight (Keras splits it with the data; class weights weigh training only)
  Tensor w_val = x_val.empty() ? Tensor()
                               : checked_weights("fit", "validation_sample_weight", options.validation_sample_weight, y_val);
  if (w_train.defined() && w_train.dim(0) != x_train[0].dim(0)) {
    if (options.sample_weight.defined()) w_val = w_train(Slice(x_train[0].dim(0), w_train.dim(0)));
    w_train = w_train(Slice(0, x_train[0].dim(0)));
  }
  BatchOptions batch_options;
  batch_options.shuffle = options.shuffle;
  batch_options.seed = options.seed;
  // each fit() goes on where the last left off: a new order every epoch, across calls too
  // (fit_loop gives the dataset each epoch's index, epochs_trained_)
  batch_options.epoch = epochs_trained_;
  ArrayDataset train(x_train, y_train, options.batch_size, batch_options, w_train);
  std::optional<ArrayDataset> validation;
  if (!x_val.empty()) validation.emplace(x_val, y_val, options.batch_size, BatchOptions{}, w_val);
  return fit_loop(train, validation ? &*validation : options.validation_dataset, options, {});
}

History Model::fit(Dataset& data, const FitOptions& options) {
  check_fit_options(options);
  if (options.sample_weight.defined()) {
    throw ValueError(fmt::format("{}: fit: sample_weight is for arrays; a Dataset gives its weights in its batches "
                                 "(DataBatch::sample_weight)",
                                 name_));
  }
  if (options.validation_split != 0) {
    throw ValueError(fmt::format("{}: fit: validation_split needs arrays (as Keras); give a Dataset "
                                 "validation_dataset or validation_data",
                                 name_));
  }
  std::vector<Tensor> x_val, y_val;
  validation_arrays(name_, options, x_val, y_val);
  std::optional<ArrayDataset> validation;
  if (!x_val.empty()) {
    validation.emplace(x_val, y_val, options.batch_size, BatchOptions{},
                       checked_weights("fit", "validation_sample_weight", options.validation_sample_weight, y_val));
  }
  return fit_loop(data, validation ? &*validation : options.validation_dataset, options, options.class_weight);
}

std::int64_t Model::dataset_steps(const Dataset& data, std::int64_t steps, const char* method,
                                  const char* what) const {
  if (steps < 0) {
    throw ValueError(fmt::format("{}: {}: {} must be >= 0 (0: every batch), got {}", name_, method, what, steps));
  }
  const std::int64_t total = data.num_batches();
  if (total == Dataset::kUnknown) {
    if (steps == 0) {
      throw ValueError(fmt::format("{}: {}: the dataset has no length (num_batches() is Dataset::kUnknown, as a "
                                   "generator's); give {}",
                                   name_, method, what));
    }
    return steps;
  }
  if (total < 0) {
    throw ValueError(fmt::format("{}: {}: the dataset's num_batches() is {}; it must be >= 0 or Dataset::kUnknown",
                                 name_, method, total));
  }
  if (total == 0) throw ValueError(fmt::format("{}: {}: the dataset has no batches", name_, method));
  return steps == 0 ? total : std::min(steps, total);
}

DataBatch Model::checked_batch(Dataset& data, std::int64_t index, const char* method, bool inputs_only) const {
  DataBatch b = data.get_batch(index);
  const std::string what = fmt::format("batch {}'s ", index);
  if (b.inputs.size() != num_inputs()) {
    throw ValueError(fmt::format("{}: {}: batch {} has {} input(s); the model takes {}", name_, method, index,
                                 b.inputs.size(), num_inputs()));
  }
  if (inputs_only) {
    b.targets.clear();
    b.sample_weight = Tensor();
  }
  require_lists(name_, method, what, b.inputs, b.targets);
  require_examples(name_, method, what + "x", b.inputs[0]);
  if (b.sample_weight.defined()) {
    b.sample_weight = checked_weights(method, what + "sample_weight", b.sample_weight, b.targets);
  }
  return b;
}

History Model::fit_loop(Dataset& train, Dataset* validation, const FitOptions& options,
                        const std::map<std::int64_t, double>& class_weight) {
  const char* method = "fit";
  dataset_steps(train, options.steps_per_epoch, method, "steps_per_epoch");
  if (validation) dataset_steps(*validation, options.validation_steps, method, "validation_steps");
  const std::int64_t total = train.num_batches();  // or kUnknown: steps_per_epoch is set
  const std::int64_t target = options.steps_per_epoch > 0 ? options.steps_per_epoch : total;

  prepare_layers();
  name_output_metrics();
  const std::vector<std::string> keys = display_keys(metrics(), validation != nullptr);
  history_ = History{};
  stop_training = false;
  resume_epoch.reset();
  // A pass over the data may span epochs (steps_per_epoch): the next batch's index in it.
  std::int64_t position = 0;
  bool in_pass = false;
  // Callbacks see a built model (BackupAndRestore loads a checkpoint into it): built here on the
  // first batch, in inference mode (no dropout draw, no statistics update), as Keras 3 builds
  // before on_train_begin. The layers draw their initial weights just as a first train_step
  // would. The batch is kept for the first step, unless a callback changes the epoch.
  std::optional<DataBatch> first;
  const std::int64_t first_epoch = epochs_trained_;
  if (!options.callbacks.empty() && !built()) {
    train.set_epoch(epochs_trained_);
    first = checked_batch(train, 0, method, false);
    NoRecording no_tape;
    (*this)(on_device(first->inputs, batch_device(first->inputs[0])), /*training=*/false);
  }
  Logs logs;
  for (const auto& cb : options.callbacks) {
    cb->set_model(this);
    cb->on_train_begin(logs);
  }
  ScopedFlag defer(defer_logs_, true);
  int initial_epoch = options.initial_epoch;
  if (resume_epoch) {
    initial_epoch = *resume_epoch;
    resume_epoch.reset();
    if (initial_epoch < 0) {
      throw ValueError(
          fmt::format("{}: fit: a callback set resume_epoch to {}; it must be >= 0", name_, initial_epoch));
    }
  }
  for (int epoch = initial_epoch; epoch < options.epochs && !stop_training; ++epoch) {
    for (const auto& cb : options.callbacks) cb->on_epoch_begin(epoch, {});
    if (options.verbose > 0) {
      std::printf("Epoch %d/%d\n", epoch + 1, options.epochs);
      std::fflush(stdout);
    }
    reset_metrics();
    if (!in_pass) {
      // a new pass, in the order of the epoch (a callback may have loaded a checkpoint)
      if (!first || first_epoch != epochs_trained_) {
        first.reset();
        train.set_epoch(epochs_trained_);
      }
      position = 0;
      in_pass = true;
    }
    Progress progress(target, options.verbose);
    std::int64_t step = 0;
    bool deferred = false;  // the metrics' results are not in `logs` yet
    while (step < target && (total == Dataset::kUnknown || position < total)) {
      DataBatch b = first ? std::move(*first) : checked_batch(train, position, method, false);
      first.reset();
      ++position;
      Tensor w = b.sample_weight;
      if (!class_weight.empty()) {
        if (w.defined()) {
          throw ValueError(fmt::format("{}: fit: batch {} has sample weights and fit was given class_weight; give "
                                       "one of them",
                                       name_, position - 1));
        }
        w = class_weights(class_weight, b.targets);
      }
      const Device dev = batch_device(b.inputs[0]);
      logs_deferred_ = false;
      logs = train_step_multi(on_device(b.inputs, dev), on_device(b.targets, dev), w.defined() ? w.to(dev) : w);
      deferred = std::exchange(logs_deferred_, false);
      ++step;
      progress.update(step, [&] { return batch_logs(logs, deferred); }, keys);
      const bool callbacks_read = std::any_of(options.callbacks.begin(), options.callbacks.end(),
                                              [](const CallbackPtr& cb) { return cb->reads_batch_logs(); });
      if (callbacks_read && deferred) {
        logs = batch_logs(logs, deferred);
        deferred = false;
      }
      for (const auto& cb : options.callbacks) cb->on_train_batch_end(step - 1, logs);
      if (stop_training) break;
    }
    logs = batch_logs(logs, deferred);  // the epoch's values: read once
    deferred = false;
    if (total != Dataset::kUnknown && position >= total) in_pass = false;
    train.on_epoch_end();  // Keras: the training data's, before the validation run
    if (validation && (epoch + 1) % options.validation_freq == 0) {
      for (const auto& [k, v] : evaluate(*validation, options.validation_steps, 0)) logs["val_" + k] = v;
    }
    progress.finish(step, logs, keys);
    ++epochs_trained_;
    history_.epoch.push_back(epoch);
    for (const auto& [k, v] : logs) history_.history[k].push_back(v);
    for (const auto& cb : options.callbacks) cb->on_epoch_end(epoch, logs);
  }
  // Keras: the optimizer's moving averages (use_ema) go into the weights before on_train_end
  if (options.epochs > 0) optimizer_->finalize_variable_values(trainable_weights());
  for (const auto& cb : options.callbacks) cb->on_train_end(logs);
  return history_;
}

Tensor Model::checked_weights(const char* method, const std::string& what, const Tensor& w,
                              const std::vector<Tensor>& ys) const {
  if (!w.defined()) return w;
  if (ys.empty()) throw ValueError(fmt::format("{}: {}: {} needs targets y", name_, method, what));
  const std::int64_t n = ys[0].dim(0);
  if (w.rank() != 1 || w.dim(0) != n) {
    throw ShapeError(fmt::format("{}: {}: {} must be [n] = [{}], got {}", name_, method, what, n, shape_str(w.shape())));
  }
  if (w.dtype() == kBool) throw DTypeError(fmt::format("{}: {}: {} must be numeric, got bool", name_, method, what));
  return w.astype(kFloat32);
}

Tensor Model::example_weights(const FitOptions& options, const std::vector<Tensor>& ys) const {
  if (options.sample_weight.defined() && !options.class_weight.empty()) {
    throw ValueError(fmt::format("{}: fit: give sample_weight or class_weight, not both", name_));
  }
  if (options.sample_weight.defined()) return checked_weights("fit", "sample_weight", options.sample_weight, ys);
  if (options.class_weight.empty()) return Tensor();
  return class_weights(options.class_weight, ys);
}

Tensor Model::class_weights(const std::map<std::int64_t, double>& class_weight, const std::vector<Tensor>& ys,
                            const char* method) const {
  if (ys.size() != 1) {
    throw ValueError(fmt::format("{}: {}: class_weight needs exactly one target, got {}", name_, method, ys.size()));
  }
  const Tensor& y = ys[0];
  const std::int64_t n = y.dim(0);
  std::vector<std::int64_t> labels;
  if (y.rank() == 1 || (y.rank() == 2 && y.dim(1) == 1)) {
    for (double v : y.to(Device::cpu()).astype(kFloat64).to_vector<double>()) labels.push_back(std::llround(v));
  } else if (y.rank() == 2) {
    labels = argmax(y, 1).to(Device::cpu()).astype(kInt64).to_vector<std::int64_t>();
  } else {
    throw ShapeError(fmt::format("{}: {}: class_weight needs labels [n], [n, 1] or one-hot [n, classes], got y {}",
                                 name_, method, shape_str(y.shape())));
  }
  std::vector<float> w(labels.size(), 1.0f);
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const auto it = class_weight.find(labels[i]);
    if (it != class_weight.end()) w[i] = static_cast<float>(it->second);
  }
  return tensor(w, {n});
}

Logs Model::train_on_batch(const Tensor& x, const Tensor& y, const Tensor& sample_weight,
                           const std::map<std::int64_t, double>& class_weight) {
  return train_on_batch(std::vector<Tensor>{x}, y.defined() ? std::vector<Tensor>{y} : std::vector<Tensor>{},
                        sample_weight, class_weight);
}

Logs Model::train_on_batch(const std::vector<Tensor>& xs, const std::vector<Tensor>& ys, const Tensor& sample_weight,
                           const std::map<std::int64_t, double>& class_weight) {
  const char* method = "train_on_batch";
  require_compiled(method);
  require_inputs(method, xs.size());
  require_lists(name_, method, "", xs, ys);
  if (sample_weight.defined() && !class_weight.empty()) {
    throw ValueError(fmt::format("{}: {}: give sample_weight or class_weight, not both", name_, method));
  }
  const Tensor w = class_weight.empty() ? checked_weights(method, "sample_weight", sample_weight, ys)
                                        : class_weights(class_weight, ys, method);
  prepare_layers();
  name_output_metrics();
  const Device dev = batch_device(xs[0]);
  reset_metrics();  // Keras 3: the logs of this batch alone
  ScopedFlag now(defer_logs_, false);  // read at once, even from a callback within fit
  return train_step_multi(on_device(xs, dev), on_device(ys, dev), w.defined() ? w.to(dev) : w);
}

Logs Model::test_on_batch(const Tensor& x, const Tensor& y, const Tensor& sample_weight) {
  return test_on_batch(std::vector<Tensor>{x}, y.defined() ? std::vector<Tensor>{y} : std::vector<Tensor>{},
                       sample_weight);
}

Logs Model::test_on_batch(const std::vector<Tensor>& xs, const std::vector<Tensor>& ys, const Tensor& sample_weight) {
  const char* method = "test_on_batch";
  require_compiled(method);
  require_inputs(method, xs.size());
  require_lists(name_, method, "", xs, ys);
  const Tensor w = checked_weights(method, "sample_weight", sample_weight, ys);
  prepare_layers();
  name_output_metrics();
  const Device dev = batch_device(xs[0]);
  reset_metrics();
  ScopedFlag now(defer_logs_, false);
  return test_step_multi(on_device(xs, dev), on_device(ys, dev), w.defined() ? w.to(dev) : w);
}

Tensor Model::predict_on_batch(const Tensor& x) {
  const auto out = predict_on_batch(std::vector<Tensor>{x});
  if (out.size() != 1) {
    throw ValueError(fmt::format("{}: predict_on_batch: the model has {} outputs; pass a vector of inputs to get "
                                 "them all",
                                 name_, out.size()));
  }
  return out[0];
}

std::vector<Tensor> Model::predict_on_batch(const std::vector<Tensor>& xs) {
  require_inputs("predict_on_batch", xs.size());
  if (xs.empty() || !xs[0].defined()) throw ValueError(fmt::format("{}: predict_on_batch: x is undefined", name_));
  NoRecording no_tape;
  return (*this)(on_device(xs, batch_device(xs[0])), /*training=*/false);
}

Logs Model::evaluate(const Tensor& x, const Tensor& y, std::int64_t batch_size, int verbose,
                     const Tensor& sample_weight) {
  std::vector<Tensor> ys;
  if (y.defined()) ys.push_back(y);
  return evaluate(std::vector<Tensor>{x}, ys, batch_size, verbose, sample_weight);
}

Logs Model::evaluate(const std::vector<Tensor>& xs, const std::vector<Tensor>& ys, std::int64_t batch_size,
                     int verbose, const Tensor& sample_weight) {
  require_compiled("evaluate");
  require_inputs("evaluate", xs.size());
  require_lists(name_, "evaluate", "", xs, ys);
  require_examples(name_, "evaluate", "x", xs[0]);
  ArrayDataset data(xs, ys, batch_size, {}, checked_weights("evaluate", "sample_weight", sample_weight, ys));
  return evaluate(data, 0, verbose);
}

Logs Model::evaluate(Dataset& data, std::int64_t steps, int verbose) {
  const char* method = "evaluate";
  require_compiled(method);
  const std::int64_t target = dataset_steps(data, steps, method, "steps");
  prepare_layers();
  name_output_metrics();
  reset_metrics();
  Progress progress(target, verbose);
  Logs logs;
  bool deferred = true;  // no step: the metrics' results (0)
  const auto keys = display_keys(metrics(), false);
  std::int64_t step = 0;
  {
    ScopedFlag defer(defer_logs_, true);
    while (step < target) {
      const DataBatch b = checked_batch(data, step, method, false);
      const Device dev = batch_device(b.inputs[0]);
      logs_deferred_ = false;
      logs = test_step_multi(on_device(b.inputs, dev), on_device(b.targets, dev),
                             b.sample_weight.defined() ? b.sample_weight.to(dev) : Tensor());
      deferred = std::exchange(logs_deferred_, false);
      progress.update(++step, [&] { return batch_logs(logs, deferred); }, keys);
    }
  }
  logs = batch_logs(logs, deferred);
  progress.finish(step, logs, keys);
  data.on_epoch_end();
  return logs;
}

Tensor Model::predict(const Tensor& x, std::int64_t batch_size) {
  require_examples(name_, "predict", "x", x);
  BatchIterator batches(x, Tensor(), batch_size);
  std::vector<Tensor> outputs;
  for (const Batch& b : batches) outputs.push_back((*this)(b.x.to(batch_device(b.x)), /*training=*/false));
  if (outputs.size() == 1) return outputs[0];
  return concat(outputs, 0);
}

std::vector<Tensor> Model::predict(const std::vector<Tensor>& xs, std::int64_t batch_size) {
  require_inputs("predict", xs.size());
  require_lists(name_, "predict", "", xs, {});
  require_examples(name_, "predict", "x", xs[0]);
  ArrayDataset data(xs, {}, batch_size);
  return predict(data, 0);
}

std::vector<Tensor> Model::predict(Dataset& data, std::int64_t steps) {
  const char* method = "predict";
  const std::int64_t target = dataset_steps(data, steps, method, "steps");
  std::vector<std::vector<Tensor>> per_output;
  for (std::int64_t step = 0; step < target; ++step) {
    const DataBatch b = checked_batch(data, step, method, true);
    const auto ys = (*this)(on_device(b.inputs, batch_device(b.inputs[0])), /*training=*/false);
    per_output.resize(ys.size());
    for (std::size_t i = 0; i < ys.size(); ++i) per_output[i].push_back(ys[i]);
  }
  data.on_epoch_end();
  std::vector<Tensor> out;
  for (auto& parts : per_output) out.push_back(parts.size() == 1 ? parts[0] : concat(parts, 0));
  return out;
}

// ================================================================ Model: weights on disk

namespace {

// Entries of a checkpoint that are not weights start with "__" (safetensors reserves
// "__metadata__" the same way), so a layer cannot be mistaken for one.
const std::string kOptimizerPrefix = "__optimizer__/";
const std::string kGeneratorPrefix = "__generator__/";
const std::string kIterations = kOptimizerPrefix + "iterations";
const std::string kLearningRate = kOptimizerPrefix + "learning_rate";
const std::string kEpochsTrained = "__model__/epochs_trained";
const char* const kCheckpointVersion = "1";

bool reserved(const std::string& name) { return name.compare(0, 2, "__") == 0; }

bool is_checkpoint(const std::map<std::string, std::string>& metadata) { return metadata.count("checkpoint") > 0; }

std::string join_names(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& x : names) s += (s.empty() ? "" : ", ") + x;
  return s.empty() ? std::string("none") : s;
}

// The model's weights, each name once (two layers of one name would overwrite each other on disk).
std::vector<Variable> unique_weights(const std::string& model, const char* method, std::vector<Variable> ws) {
  std::set<std::string> names;
  for (const auto& w : ws) {
    if (!names.insert(w.name()).second) {
      throw ValueError(
          fmt::format("{}: {}: two weights are named '{}'; give the layers unique names", model, method, w.name()));
    }
  }
  return ws;
}

// Requires the entries of `file` that `is_weight` selects to be exactly the weights `ws`, with
// their shapes and dtypes.
void match_weights(const std::string& model, const char* method, const std::string& path,
                   const std::vector<Variable>& ws, const std::map<std::string, Tensor>& file,
                   bool (*is_weight)(const std::string&)) {
  std::vector<std::string> missing;
  for (const auto& w : ws) {
    const auto it = file.find(w.name());
    if (it == file.end()) {
      missing.push_back(w.name());
      continue;
    }
    const Tensor& t = it->second;
    if (t.shape() != w.shape()) {
      throw ShapeError(fmt::format("{}: {}: '{}' has shape {} in '{}' but {} in the model", model, method, w.name(),
                                   shape_str(t.shape()), path, shape_str(w.shape())));
    }
    if (t.dtype() != w.dtype()) {
      throw DTypeError(fmt::format("{}: {}: '{}' is {} in '{}' but {} in the model", model, method, w.name(),
                                   dtype_name(t.dtype()), path, dtype_name(w.dtype())));
    }
  }
  std::vector<std::string> unexpected;
  for (const auto& [k, t] : file) {
    if (!is_weight(k)) continue;
    if (std::none_of(ws.begin(), ws.end(), [&](const Variable& w) { return w.name() == k; })) unexpected.push_back(k);
  }
  if (!missing.empty() || !unexpected.empty()) {
    throw ValueError(fmt::format("{}: {}: the weights in '{}' do not match the model: missing [{}], unexpected [{}]",
                                 model, method, path, join_names(missing), join_names(unexpected)));
  }
}

// Every layer of the model and their sublayers, depth first, each once (a layer shared by two
// parents is listed once), and each name once.
std::vector<LayerPtr> all_layers(const std::string& model, const char* method, const std::vector<LayerPtr>& top) {
  std::vector<LayerPtr> out = layers::detail::layer_tree(top);
  std::set<std::string> names;
  for (const auto& l : out) {
    if (!names.insert(l->name()).second) {
      throw ValueError(fmt::format("{}: {}: two layers are named '{}'; give the layers unique names", model, method,
                                   l->name()));
    }
  }
  return out;
}

// A checkpoint entry that must be there with this dtype and shape.
const Tensor& checkpoint_entry(const std::map<std::string, Tensor>& file, const std::string& key, DType dtype,
                               const Shape& shape, const std::string& model, const std::string& path) {
  const auto it = file.find(key);
  if (it == file.end()) {
    throw ValueError(fmt::format("{}: load_checkpoint: '{}' has no entry '{}'", model, path, key));
  }
  const Tensor& t = it->second;
  if (t.dtype() != dtype) {
    throw DTypeError(fmt::format("{}: load_checkpoint: entry '{}' in '{}' is {}, expected {}", model, key, path,
                                 dtype_name(t.dtype()), dtype_name(dtype)));
  }
  if (t.shape() != shape) {
    throw ShapeError(fmt::format("{}: load_checkpoint: entry '{}' in '{}' has shape {}, expected {}", model, key, path,
                                 shape_str(t.shape()), shape_str(shape)));
  }
  return t;
}

// Runs f, putting `context` before the message of the tapeflow error it raises (same type).
template <class F>
void with_context(const std::string& context, F&& f) {
  try {
    f();
  } catch (const ShapeError& e) {
    throw ShapeError(context + e.what());
  } catch (const DTypeError& e) {
    throw DTypeError(context + e.what());
  } catch (const ValueError& e) {
    throw ValueError(context + e.what());
  }
}

}  // namespace

void Model::save_weights(const std::string& path) const {
  if (!built()) throw ValueError(fmt::format("{}: save_weights: the model is not built yet", name_));
  NamedTensors named;
  for (const auto& w : unique_weights(name_, "save_weights", weights())) named.emplace_back(w.name(), w);
  save_safetensors(path, named, {{"format", "tapeflow"}, {"model", name_}});
}

void Model::load_weights(const std::string& path) {
  if (!built()) {
    throw ValueError(
        fmt::format("{}: load_weights: the model is not built yet; call build(input_shape) or run it "
                    "on a batch first",
                    name_));
  }
  auto ws = unique_weights(name_, "load_weights", weights());
  // a checkpoint's training state is not weights: skipped (a weights file has none)
  const bool checkpoint = is_checkpoint(load_safetensors_metadata(path));
  std::map<std::string, Tensor> file = load_safetensors_map(path);
  const auto any = +[](const std::string&) { return true; };
  const auto not_reserved = +[](const std::string& k) { return !reserved(k); };
  match_weights(name_, "load_weights", path, ws, file, checkpoint ? not_reserved : any);
  for (auto& w : ws) w.assign(file.at(w.name()));
}

void Model::save_checkpoint(const std::string& path, const std::map<std::string, std::string>& metadata) const {
  const char* method = "save_checkpoint";
  if (!built()) throw ValueError(fmt::format("{}: save_checkpoint: the model is not built yet", name_));
  require_compiled(method);
  std::map<std::string, std::string> meta = {{"format", "tapeflow"},
                                             {"checkpoint", kCheckpointVersion},
                                             {"model", name_},
                                             {"optimizer", optimizer_->name()}};
  for (const auto& [k, v] : metadata) {
    if (meta.count(k)) {
      throw ValueError(fmt::format("{}: save_checkpoint: metadata key '{}' is reserved by the checkpoint", name_, k));
    }
    meta.emplace(k, v);
  }
  NamedTensors named;
  for (const auto& w : unique_weights(name_, method, weights())) {
    if (reserved(w.name())) {
      throw ValueError(fmt::format("{}: save_checkpoint: weight '{}' starts with \"__\", which a checkpoint keeps for "
                                   "its training state; rename the layer",
                                   name_, w.name()));
    }
    named.emplace_back(w.name(), w);
  }
  const optimizers::OptimizerState state = optimizer_->get_state(trainable_weights());
  named.emplace_back(kIterations, tensor<std::int64_t>({state.iterations}, {}));
  if (state.learning_rate) named.emplace_back(kLearningRate, tensor<double>({*state.learning_rate}, {}));
  for (const auto& [slot, t] : state.slots) named.emplace_back(kOptimizerPrefix + slot, t);
  for (const auto& l : all_layers(name_, method, layers())) {
    const Generator& gen = l->generator();
    // the uint64 seed and offset as int64 bits (safetensors readers know no U64 in tapeflow)
    named.emplace_back(kGeneratorPrefix + l->name(), tensor<std::int64_t>({static_cast<std::int64_t>(gen.seed()),
                                                                          static_cast<std::int64_t>(gen.offset())},
                                                                         {2}));
  }
  named.emplace_back(kEpochsTrained, tensor<std::int64_t>({epochs_trained_}, {}));
  save_safetensors(path, named, meta);
}

void Model::load_checkpoint(const std::string& path) {
  const char* method = "load_checkpoint";
  if (!built()) {
    throw ValueError(
        fmt::format("{}: load_checkpoint: the model is not built yet; call build(input_shape) or run it "
                    "on a batch first",
                    name_));
  }
  require_compiled(method);
  auto ws = unique_weights(name_, method, weights());
  const auto meta = load_safetensors_metadata(path);
  if (!is_checkpoint(meta)) {
    throw ValueError(fmt::format("{}: load_checkpoint: '{}' is not a checkpoint (its metadata has no \"checkpoint\" "
                                 "key); a weights file loads with load_weights",
                                 name_, path));
  }
  if (meta.at("checkpoint") != kCheckpointVersion) {
    throw ValueError(fmt::format("{}: load_checkpoint: '{}' is a checkpoint of version '{}'; this tapeflow reads "
                                 "version {}",
                                 name_, path, meta.at("checkpoint"), kCheckpointVersion));
  }
  const auto opt = meta.find("optimizer");
  const std::string saved_optimizer = opt == meta.end() ? std::string("(none)") : opt->second;
  if (saved_optimizer != optimizer_->name()) {
    throw ValueError(fmt::format("{}: load_checkpoint: '{}' holds the state of optimizer '{}' but the model is "
                                 "compiled with '{}'",
                                 name_, path, saved_optimizer, optimizer_->name()));
  }
  const std::map<std::string, Tensor> file = load_safetensors_map(path);
  match_weights(name_, method, path, ws, file, +[](const std::string& k) { return !reserved(k); });

  // Every reserved entry is read below; one left over is unexpected.
  std::set<std::string> used;
  auto entry = [&](const std::string& key, DType dtype, const Shape& shape) -> const Tensor& {
    used.insert(key);
    return checkpoint_entry(file, key, dtype, shape, name_, path);
  };
  const std::int64_t epochs = entry(kEpochsTrained, kInt64, {}).item<std::int64_t>();
  if (epochs < 0) {
    throw ValueError(fmt::format("{}: load_checkpoint: entry '{}' in '{}' is {}, expected >= 0", name_, kEpochsTrained,
                                 path, epochs));
  }
  std::vector<std::pair<LayerPtr, std::vector<std::int64_t>>> generators;
  for (const auto& l : all_layers(name_, method, layers())) {
    generators.emplace_back(l, entry(kGeneratorPrefix + l->name(), kInt64, {2}).to_vector<std::int64_t>());
  }
  optimizers::OptimizerState state;
  state.iterations = entry(kIterations, kInt64, {}).item<std::int64_t>();
  if (file.count(kLearningRate)) state.learning_rate = entry(kLearningRate, kFloat64, {}).item<double>();
  for (const auto& [k, t] : file) {
    if (k.compare(0, kOptimizerPrefix.size(), kOptimizerPrefix) != 0 || used.count(k)) continue;
    state.slots.emplace_back(k.substr(kOptimizerPrefix.size()), t);
    used.insert(k);
  }
  std::vector<std::string> unexpected;
  for (const auto& [k, t] : file) {
    if (reserved(k) && !used.count(k)) unexpected.push_back(k);
  }
  if (!unexpected.empty()) {
    throw ValueError(fmt::format("{}: load_checkpoint: '{}' has entries this model does not know: [{}]", name_, path,
                                 join_names(unexpected)));
  }

  // The optimizer checks its part, then changes it; nothing below can fail on the file's content.
  with_context(fmt::format("{}: load_checkpoint: the optimizer state in '{}' (entries '{}...'): ", name_, path,
                           kOptimizerPrefix),
               [&] { optimizer_->set_state(state, trainable_weights()); });
  for (auto& w : ws) w.assign(file.at(w.name()));
  for (const auto& [l, g] : generators) {
    l->generator().set_state(static_cast<std::uint64_t>(g[0]), static_cast<std::uint64_t>(g[1]));
  }
  epochs_trained_ = epochs;
}

// ================================================================ Sequential

Sequential::Sequential(const std::vector<LayerPtr>& layers, std::string name) : Model(std::move(name)) {
  for (const auto& l : layers) add(l);
}

void Sequential::add(LayerPtr layer) {
  if (!layer) throw ValueError(fmt::format("{}: add: the layer is null", name()));
  if (std::any_of(layers_.begin(), layers_.end(), [&](const LayerPtr& l) { return l == layer; })) {
    throw ValueError(fmt::format("{}: add: layer '{}' is already in the model", name(), layer->name()));
  }
  if (!layer->name().empty() && std::any_of(layers_.begin(), layers_.end(),
                                            [&](const LayerPtr& l) { return l->name() == layer->name(); })) {
    throw ValueError(fmt::format("{}: add: a layer named '{}' is already in the model; layer names must be unique",
                                 name(), layer->name()));
  }
  name_layer(*layer, layers_, layers_.size());
  layers_.push_back(std::move(layer));
}

void Sequential::pop() {
  if (layers_.empty()) throw ValueError(fmt::format("{}: pop: there are no layers", name()));
  layers_.pop_back();
}

Tensor Sequential::call(const Tensor& x, bool training) { return call_masked(x, Tensor(), training); }

Tensor Sequential::call_masked(const Tensor& x, const Tensor& mask_in, bool training) {
  if (layers_.empty()) throw ValueError(fmt::format("{}: the model has no layers", name()));
  Tensor h = x, mask = mask_in;
  for (const auto& l : layers_) {
    Tensor y = (*l)(h, mask, training);
    mask = l->compute_mask(h, mask);
    h = std::move(y);
  }
  set_output_mask(h, mask);
  return h;
}

}  // namespace tapeflow
