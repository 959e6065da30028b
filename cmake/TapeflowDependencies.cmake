# Every dependency is found with find_package (Debian ships CMake configs for all but BLAS).
find_package(xtl REQUIRED)
find_package(xsimd REQUIRED)
find_package(xtensor REQUIRED)
find_package(xtensor-blas REQUIRED)
find_package(fmt REQUIRED)
find_package(ZLIB REQUIRED)
find_package(Threads REQUIRED)
# stb_image (libstb-dev): the image decoder behind load_img; one private .cpp of the layers
# compiles it, so only the build needs the header.
find_path(TAPEFLOW_STB_INCLUDE_DIR stb_image.h PATH_SUFFIXES stb REQUIRED)
if(TAPEFLOW_BUILD_BENCHMARKS)
  find_package(OpenMP REQUIRED COMPONENTS CXX)  # the STREAM-like bandwidth limits only
endif()
# OpenBLAS through CMake's FindBLAS; cblas.h comes with it. The kernels call it on one thread
# per block from their own pool (kernels/cpu/thread_pool.hpp), so its build variant does not matter.
set(BLA_VENDOR OpenBLAS)
find_package(BLAS REQUIRED)
find_path(TAPEFLOW_CBLAS_INCLUDE_DIR cblas.h PATH_SUFFIXES openblas REQUIRED)
if(TAPEFLOW_BUILD_TESTS)
  find_package(Catch2 2 REQUIRED)
endif()

# CUDA: ON requires it, AUTO enables it where nvcc is found. MOCK builds kernels/cuda/mock
# instead: the core's CUDA paths against two host-memory devices, for the tests (no nvcc).
set(TAPEFLOW_HAVE_CUDA OFF)
set(TAPEFLOW_CUDA_MOCK OFF)
set(TAPEFLOW_CUDA_EMU OFF)
if(TAPEFLOW_CUDA STREQUAL "MOCK")
  set(TAPEFLOW_HAVE_CUDA ON)
  set(TAPEFLOW_CUDA_MOCK ON)
elseif(TAPEFLOW_CUDA STREQUAL "EMU")
  # kernels/cuda/src compiled by g++ against kernels/cuda/emu: the CUDA toolkit's headers
  # (for the runtime API and cuBLAS types), no nvcc, no driver, no GPU.
  find_package(CUDAToolkit REQUIRED)
  set(TAPEFLOW_HAVE_CUDA ON)
  set(TAPEFLOW_CUDA_EMU ON)
elseif(NOT TAPEFLOW_CUDA STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 80-real 90)
    endif()
    set(CMAKE_CUDA_RUNTIME_LIBRARY Shared)
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(TAPEFLOW_HAVE_CUDA ON)
  elseif(TAPEFLOW_CUDA STREQUAL "ON")
    message(FATAL_ERROR "TAPEFLOW_CUDA=ON but no CUDA compiler was found")
  endif()
endif()
message(STATUS "tapeflow: CUDA ${TAPEFLOW_HAVE_CUDA} (mock: ${TAPEFLOW_CUDA_MOCK}, emulator: ${TAPEFLOW_CUDA_EMU})")
