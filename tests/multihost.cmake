# gradguard across 2 emulated hosts (tools/netns-cluster.sh: network namespaces
# gg-h1, gg-h2 with 2 slots each, Open MPI over TCP between them, launched through
# an ssh-like agent): placement and BLAS threads per node, 4 ranks on 2 hosts vs
# 1 rank (--shard-update on/off), --deterministic bitwise, resume on another
# host count, a failing rank on gg-h2 (exit 66, one line), a rank on gg-h2
# killed with -9. ~15 s. Skipped (77) without root or when network namespaces
# cannot be created (containers without CAP_SYS_ADMIN/CAP_NET_ADMIN).
# RUN_SERIAL: 4 ranks on the machine's cores, and the namespaces are machine-wide.
# Included from tests/CMakeLists.txt.
add_test(NAME multihost COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/multihost_test.sh ${PROJECT_BINARY_DIR})
set_tests_properties(multihost PROPERTIES TIMEOUT 600 ENVIRONMENT "${GG_TEST_ENV}"
  SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)
