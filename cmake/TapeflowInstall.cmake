# One installed CMake package, tapeflow: find_package(tapeflow) gives tapeflow::core,
# tapeflow::autodiff, ... and tapeflow::tapeflow for all.
include(CMakePackageConfigHelpers)
set_target_properties(tapeflow PROPERTIES EXPORT_NAME tapeflow)
install(TARGETS tapeflow EXPORT tapeflowTargets)
install(EXPORT tapeflowTargets NAMESPACE tapeflow:: DESTINATION lib/cmake/tapeflow)
configure_package_config_file(${CMAKE_CURRENT_SOURCE_DIR}/cmake/tapeflowConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/tapeflowConfig.cmake INSTALL_DESTINATION lib/cmake/tapeflow)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/tapeflowConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/tapeflowConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/tapeflowConfigVersion.cmake DESTINATION lib/cmake/tapeflow)
