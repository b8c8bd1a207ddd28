# jobs/fashion_mnist.sh as a real Slurm batch job on a local single-node cluster
# (tools/local-slurm.sh, started and stopped by the test unless one is already
# running): a 1-epoch run on 2 tasks, then USR1 -> checkpoint -> exit 75 ->
# requeue -> resume -> done, with the ranks started by mpirun and by srun
# (GG_LAUNCH=srun); then `srun --mpi=pmix -n 2 gradguard train` directly: a
# good run, one rank with a bad input (exit 66, one line), one rank killed
# (the step ends). ~50 s. Skipped (77) without root, Slurm
# (slurmctld slurmd slurm-client munge), 2 CPUs or dataset-fashion-mnist.
# RUN_SERIAL: it needs both CPUs of the node and the machine-wide daemons.
# Included from tests/CMakeLists.txt.
add_test(NAME slurm COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/slurm_test.sh ${PROJECT_BINARY_DIR})
set_tests_properties(slurm PROPERTIES TIMEOUT 600 ENVIRONMENT "${GG_TEST_ENV}"
  SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)
