# fuzz.cmake — coverage-guided fuzzing of the parsers of untrusted input
# (gg-data import-idx / import-csv, the INI config file and the flags), and
# the regression test that replays the saved inputs. Included from
# tests/CMakeLists.txt: CMAKE_CURRENT_SOURCE_DIR is tests/.
#
#   -DGG_FUZZ=ON (clang only): libFuzzer binaries fuzz_idx, fuzz_csv,
#     fuzz_config, built with -fsanitize=fuzzer,address,undefined (see
#     tests/fuzz/README.md for how to run them).
#   Always: fuzz_replay_<target>, the same entry points with a plain main()
#     (tests/fuzz/replay_main.c), and the test fuzz_regress that runs every
#     file under tests/fuzz/corpus/<target>/ through them.
option(GG_FUZZ "Build the libFuzzer targets (needs clang)" OFF)

set(GG_FUZZ_DIR ${CMAKE_CURRENT_SOURCE_DIR}/fuzz)
set(GG_FUZZ_TARGETS idx csv config)
# Library sources a fuzzer compiles into itself, so that libFuzzer sees
# their coverage (gradguard_lib itself is not instrumented; the linker takes
# these copies and leaves the archive's members unused). idx and csv include
# tools/gg-data.c in their own source.
set(GG_FUZZ_SOURCES_idx "")
set(GG_FUZZ_SOURCES_csv "")
set(GG_FUZZ_SOURCES_config ${PROJECT_SOURCE_DIR}/src/config.c ${PROJECT_SOURCE_DIR}/src/init.c
    ${PROJECT_SOURCE_DIR}/src/optim.c)

foreach(t ${GG_FUZZ_TARGETS})
  add_executable(fuzz_replay_${t} ${GG_FUZZ_DIR}/fuzz_${t}.c ${GG_FUZZ_DIR}/replay_main.c)
  target_link_libraries(fuzz_replay_${t} PRIVATE gradguard_lib ZLIB::ZLIB gg_warnings)
endforeach()

add_test(NAME fuzz_regress
  COMMAND bash ${GG_FUZZ_DIR}/regress.sh ${GG_FUZZ_DIR}/corpus
    idx=$<TARGET_FILE:fuzz_replay_idx> csv=$<TARGET_FILE:fuzz_replay_csv>
    config=$<TARGET_FILE:fuzz_replay_config>)
# UBSan findings must fail the test in a -DGG_SANITIZE=ON build, not only print.
set_tests_properties(fuzz_regress PROPERTIES TIMEOUT 120
  ENVIRONMENT "${GG_TEST_ENV};UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1")

if(GG_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "GG_FUZZ=ON needs clang (libFuzzer): cmake -DCMAKE_C_COMPILER=clang -DGG_FUZZ=ON")
  endif()
  foreach(t ${GG_FUZZ_TARGETS})
    add_executable(fuzz_${t} ${GG_FUZZ_DIR}/fuzz_${t}.c ${GG_FUZZ_SOURCES_${t}})
    target_include_directories(fuzz_${t} PRIVATE ${PROJECT_SOURCE_DIR}/src)
    target_compile_options(fuzz_${t} PRIVATE -fsanitize=fuzzer,address,undefined
      -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
    target_link_options(fuzz_${t} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(fuzz_${t} PRIVATE gradguard_lib ZLIB::ZLIB gg_warnings)
  endforeach()
endif()
