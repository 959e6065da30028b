# Flags shared by every tapeflow target, carried by one interface target.
add_library(tapeflow_options INTERFACE)
# xtensor changes its default allocator with XTENSOR_USE_XSIMD: define it for every TU.
target_compile_definitions(tapeflow_options INTERFACE XTENSOR_USE_XSIMD)
target_compile_options(tapeflow_options INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra>
  $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<BOOL:${TAPEFLOW_WERROR}>>:-Werror>
  $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<BOOL:${TAPEFLOW_NATIVE}>>:-march=native>)
if(TAPEFLOW_SANITIZE)
  target_compile_options(tapeflow_options INTERFACE
    $<$<COMPILE_LANGUAGE:CXX>:-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined>)
  target_link_options(tapeflow_options INTERFACE -fsanitize=address,undefined)
endif()
if(TAPEFLOW_TSAN)
  if(TAPEFLOW_SANITIZE)
    message(FATAL_ERROR "TAPEFLOW_TSAN and TAPEFLOW_SANITIZE cannot be combined (ThreadSanitizer excludes ASan)")
  endif()
  target_compile_options(tapeflow_options INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-fsanitize=thread -fno-omit-frame-pointer>)
  target_link_options(tapeflow_options INTERFACE -fsanitize=thread)
endif()

# add_tapeflow_library(NAME folder SOURCES ... PUBLIC_DEPS ... PRIVATE_DEPS ...)
function(tapeflow_add_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(tapeflow_${name} STATIC ${ARG_SOURCES})
  add_library(tapeflow::${name} ALIAS tapeflow_${name})
  set_target_properties(tapeflow_${name} PROPERTIES EXPORT_NAME ${name})
  target_include_directories(tapeflow_${name} PUBLIC
    $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:include>)
  target_link_libraries(tapeflow_${name} PUBLIC $<BUILD_INTERFACE:tapeflow_options> ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  # consumers compile the public headers as C++17 at least, whatever their own default
  target_compile_features(tapeflow_${name} PUBLIC cxx_std_17)
  install(TARGETS tapeflow_${name} EXPORT tapeflowTargets
    ARCHIVE DESTINATION lib LIBRARY DESTINATION lib RUNTIME DESTINATION bin)
  install(DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/include/ DESTINATION include)
endfunction()
