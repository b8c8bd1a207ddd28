# gg-inspect: the read-only inspection program for checkpoints and stats.h5
# (summary, stats, diagnose, diff, export). Included by the top-level
# CMakeLists.txt after tests/, so GG_TEST_ENV is set; paths are relative to
# the top-level source folder.
add_executable(gg-inspect ${PROJECT_SOURCE_DIR}/tools/gg-inspect.c)
# the HDF5 attribute readers of src/internal.h
target_include_directories(gg-inspect PRIVATE ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(gg-inspect PRIVATE gradguard_lib gg_warnings)
target_compile_definitions(gg-inspect PRIVATE GG_VERSION="${PROJECT_VERSION}")
install(TARGETS gg-inspect RUNTIME DESTINATION bin)

if(BUILD_TESTING)
  # End to end on runs it trains itself (healthy, vanishing, exploding, dead
  # ReLUs), every subcommand's numbers checked against h5py/numpy, broken inputs.
  add_test(NAME inspect COMMAND bash ${PROJECT_SOURCE_DIR}/tests/inspect_test.sh ${PROJECT_BINARY_DIR})
  set_tests_properties(inspect PROPERTIES TIMEOUT 300 ENVIRONMENT "${GG_TEST_ENV}")
endif()
