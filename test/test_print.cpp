// Printing: exact NumPy-style strings (numpy.array_repr with precision 4, "array(" spelled
// "tensor(", shape and dtype always shown).
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <sstream>
#include <string>

#include "tapeflow/core.hpp"

using namespace tapeflow;

namespace {

std::string streamed(const Tensor& t) {
  std::ostringstream os;
  os << t;
  return os.str();
}

}  // namespace

TEST_CASE("print: float matrix aligns rows under the first bracket", "[print]") {
  const Tensor t = tensor({1.f, 2.f, 3.f, 4.f}, {2, 2});
  CHECK(to_string(t) == "tensor([[1., 2.],\n"
                        "        [3., 4.]], shape=[2, 2], dtype=float32)");
}

TEST_CASE("print: floats share integer and fraction widths", "[print]") {
  CHECK(to_string(tensor({1.f, 2.5f, -0.125f})) == "tensor([ 1.   ,  2.5  , -0.125], shape=[3], dtype=float32)");
  CHECK(to_string(tensor({1.0 / 3, 2.0 / 3})) == "tensor([0.3333, 0.6667], shape=[2], dtype=float64)");
  CHECK(to_string(tensor({0.f, -0.5f})) == "tensor([ 0. , -0.5], shape=[2], dtype=float32)");
}

TEST_CASE("print: scientific notation for large, small or widely spread values", "[print]") {
  CHECK(to_string(tensor({1.f, 123456.f})) == "tensor([1.0000e+00, 1.2346e+05], shape=[2], dtype=float32)");
  CHECK(to_string(tensor({1e-5, 1.0})) == "tensor([1.e-05, 1.e+00], shape=[2], dtype=float64)");
  CHECK(to_string(tensor({-2.5e9, 0.0})) == "tensor([-2.5e+09,  0.0e+00], shape=[2], dtype=float64)");
  CHECK(to_string(tensor({1e100, 1.0})) == "tensor([1.e+100, 1.e+000], shape=[2], dtype=float64)");
}

TEST_CASE("print: nan and inf are right-aligned", "[print]") {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  CHECK(to_string(tensor({1.f, nan, -inf})) == "tensor([  1.,  nan, -inf], shape=[3], dtype=float32)");
}

TEST_CASE("print: integers are right-aligned to the widest", "[print]") {
  const Tensor t = tensor({1, -20, 300, 4, 5, 6}, {2, 3});
  CHECK(to_string(t) == "tensor([[  1, -20, 300],\n"
                        "        [  4,   5,   6]], shape=[2, 3], dtype=int32)");
}

TEST_CASE("print: bools as True/False", "[print]") {
  CHECK(to_string(tensor({true, false, true})) == "tensor([ True, False,  True], shape=[3], dtype=bool)");
  CHECK(to_string(tensor({1.f, 2.f}) > 1.5) == "tensor([False,  True], shape=[2], dtype=bool)");
}

TEST_CASE("print: rank 0 prints the value", "[print]") {
  CHECK(to_string(scalar(3.5)) == "tensor(3.5, shape=[], dtype=float32)");
  CHECK(to_string(scalar(2.0, kFloat64)) == "tensor(2., shape=[], dtype=float64)");
  CHECK(to_string(scalar(7, kInt64)) == "tensor(7, shape=[], dtype=int64)");
  CHECK(to_string(scalar(1, kBool)) == "tensor(True, shape=[], dtype=bool)");
  CHECK(to_string(tensor({5, 6, 7})(1)) == "tensor(6, shape=[], dtype=int32)");
}

TEST_CASE("print: rank 3 separates blocks with a blank line", "[print]") {
  const Tensor t = arange(8).reshape({2, 2, 2});
  CHECK(to_string(t) == "tensor([[[0, 1],\n"
                        "         [2, 3]],\n"
                        "\n"
                        "        [[4, 5],\n"
                        "         [6, 7]]], shape=[2, 2, 2], dtype=int64)");
}

TEST_CASE("print: undefined and empty tensors", "[print]") {
  CHECK(to_string(Tensor()) == "tensor(undefined)");
  CHECK(to_string(zeros({0, 3})) == "tensor([], shape=[0, 3], dtype=float32)");
  CHECK(to_string(zeros({0}, kInt64)) == "tensor([], shape=[0], dtype=int64)");
}

TEST_CASE("print: long rows wrap at 75 columns", "[print]") {
  CHECK(to_string(arange(0, 30, 1, kFloat32)) ==
        "tensor([ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10., 11., 12.,\n"
        "        13., 14., 15., 16., 17., 18., 19., 20., 21., 22., 23., 24., 25.,\n"
        "        26., 27., 28., 29.], shape=[30], dtype=float32)");
  // shape and dtype move to their own line rather than run past the width.
  CHECK(to_string(arange(10, 23, 1, kFloat32)) ==
        "tensor([10., 11., 12., 13., 14., 15., 16., 17., 18., 19., 20., 21., 22.],\n"
        "       shape=[13], dtype=float32)");
}

TEST_CASE("print: more than 1000 elements are summarised with ...", "[print]") {
  CHECK(to_string(arange(2000)) ==
        "tensor([   0,    1,    2, ..., 1997, 1998, 1999],\n"
        "       shape=[2000], dtype=int64)");
  CHECK(to_string(arange(10000).reshape({100, 100})) ==
        "tensor([[   0,    1,    2, ...,   97,   98,   99],\n"
        "        [ 100,  101,  102, ...,  197,  198,  199],\n"
        "        [ 200,  201,  202, ...,  297,  298,  299],\n"
        "        ...,\n"
        "        [9700, 9701, 9702, ..., 9797, 9798, 9799],\n"
        "        [9800, 9801, 9802, ..., 9897, 9898, 9899],\n"
        "        [9900, 9901, 9902, ..., 9997, 9998, 9999]],\n"
        "       shape=[100, 100], dtype=int64)");
  // Only long axes are cut: [2, 1000] keeps both rows.
  CHECK(to_string(arange(2000).reshape({2, 1000})) ==
        "tensor([[   0,    1,    2, ...,  997,  998,  999],\n"
        "        [1000, 1001, 1002, ..., 1997, 1998, 1999]],\n"
        "       shape=[2, 1000], dtype=int64)");
  // 1000 elements exactly are printed in full.
  CHECK(to_string(arange(1000)).find("...") == std::string::npos);

  Generator gen(7);
  const std::string big = to_string(uniform({60, 28, 28}, gen));
  CHECK(big.find("...") != std::string::npos);
  CHECK(big.find("shape=[60, 28, 28], dtype=float32)") != std::string::npos);
  CHECK(big.size() < 8000);  // 216 of the 47040 values
}

TEST_CASE("print: views print their logical values", "[print]") {
  const Tensor t = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(to_string(t.transpose()) == "tensor([[1, 4],\n"
                                    "        [2, 5],\n"
                                    "        [3, 6]], shape=[3, 2], dtype=int32)");
  CHECK(to_string(t(all, Slice(none, none, -2))) == "tensor([[3, 1],\n"
                                                    "        [6, 4]], shape=[2, 2], dtype=int32)");
  // A summarised view: the transpose of [100, 100] shows columns as rows.
  CHECK(to_string(arange(10000).reshape({100, 100}).transpose()).rfind("tensor([[   0,  100,  200, ..., 9700, 9800, 9900],\n", 0) == 0);
}

TEST_CASE("print: fmt, operator<< and to_string agree", "[print]") {
  const Tensor t = tensor({1.5f, -2.f, 3.25f, 4.f, 5.f, 6.f}, {3, 2});
  CHECK(fmt::format("{}", t) == to_string(t));
  CHECK(streamed(t) == to_string(t));
  CHECK(fmt::format("{}", Tensor()) == "tensor(undefined)");
  CHECK(fmt::format("x = {}", scalar(1.0)) == "x = tensor(1., shape=[], dtype=float32)");
}

TEST_CASE("print: abs(-0.0) prints 0. (NumPy's np.abs), -0.0 itself keeps its sign", "[print]") {
  CHECK(to_string(abs(tensor({-0.f, 1.5f}))) == "tensor([0. , 1.5], shape=[2], dtype=float32)");
  CHECK(to_string(abs(tensor({-0.0}))) == "tensor([0.], shape=[1], dtype=float64)");
  CHECK(to_string(tensor({-0.0})) == "tensor([-0.], shape=[1], dtype=float64)");
}

TEST_CASE("print: dtypes and devices stream by name; a std::vector makes a 1-D tensor", "[print]") {
  std::ostringstream os;
  os << kFloat32 << " " << kInt64 << " " << Device::cpu() << " " << Device::cuda(1);
  CHECK(os.str() == "float32 int64 cpu cuda:1");
  const std::vector<double> v = {1.5, -2.0, 3.0};
  const Tensor t = tensor(v);
  CHECK(t.shape() == Shape{3});
  CHECK(t.dtype() == kFloat64);
  CHECK(t.to_vector<double>() == v);
  CHECK(tensor(std::vector<std::int32_t>{}).shape() == Shape{0});
}
