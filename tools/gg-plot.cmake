# gg-plot — pictures (PNG) of the gradient statistics in RUN/stats.h5.
# Included by the top-level CMakeLists.txt (after tests/, with GG_TEST_ENV).
# Draws with cairo (Debian: libcairo2-dev; text needs a font, e.g.
# fonts-dejavu-core).
pkg_check_modules(CAIRO REQUIRED IMPORTED_TARGET cairo)

add_executable(gg-plot ${PROJECT_SOURCE_DIR}/tools/gg-plot.c)
# the HDF5 attribute readers of src/internal.h
target_include_directories(gg-plot PRIVATE ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(gg-plot PRIVATE gradguard_lib PkgConfig::CAIRO gg_warnings)
target_compile_definitions(gg-plot PRIVATE GG_VERSION="${PROJECT_VERSION}")
install(TARGETS gg-plot RUNTIME DESTINATION bin)

if(BUILD_TESTING)
  # end to end: real and synthetic stats files, pixels checked in Python
  add_test(NAME plot COMMAND bash ${PROJECT_SOURCE_DIR}/tests/plot_test.sh ${PROJECT_BINARY_DIR})
  set_tests_properties(plot PROPERTIES TIMEOUT 300 ENVIRONMENT "${GG_TEST_ENV}")
endif()
