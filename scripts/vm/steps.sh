# shellcheck shell=bash
# The kernel matrix's steps (sourced by scripts/vm/guest inside a VM, and by scripts/kernel-matrix
# for the host row): each runs with a time limit and leaves in $OUT
#   <step>.log        its output
#   <step>.xml        ctest's JUnit (the ctest steps)
#   doctor.json       hrbench doctor --json
#   steps.tsv         step, exit code (124: its time limit), seconds, limit
# Needs BUILD (the build tree), OUT (the results directory) and STEPS (a comma list of doctor,
# unit, bpf, bpf-smoke, lsm, netns), optionally STEP_LIMIT_<step> (seconds; the step's name with
# - as _) and CTEST_JOBS. The limits are for TCG on a 2-core machine shared with other work.

# The one test that shows the BPF LSM blocker at work (tests/netns/guard_test.cpp).
HRB_LSM_TESTS='^GuardLsm\.'
# CI's VM smoke test: the part of the bpf label that fits a few minutes under TCG (each test
# builds its cluster, about 15 s there) — the objects' BTF and ABI checks (every object loads on
# the kernel), and from_pod/from_uplink run on real frames: masquerade and its reply, NAT port and
# echo-id ranges, service replies; and one IPv6 masquerade and one IPv6 service (the IPv6
# checksum flag the loader probes for, csum_flag_ipv6). Not the connection-tracking state
# machine, the packet fixtures, the other services, NodePort, the packet fuzzer or the benchmark
# smoke tests: the full label is step bpf.
HRB_BPF_SMOKE_TESTS='^((AbiBtf|AbiVersion|Datapath|NatPorts|ServiceReplies)\.|Nat66\.ThePodSourceBecomesTheNodes|Services6\.AServiceIsDnatedAndTheReply)'

hrb_step_limit() {
  local v="STEP_LIMIT_${1//-/_}"
  if [ -n "${!v:-}" ]; then echo "${!v}"; return; fi
  case $1 in
    doctor) echo 240 ;;
    unit) echo 900 ;;
    bpf) echo 1800 ;;
    bpf-smoke) echo 300 ;;
    lsm) echo 300 ;;
    netns) echo 3600 ;;
  esac
}

hrb_run_step() {
  local step=$1 limit t0 rc
  limit=$(hrb_step_limit "$step")
  shift
  echo "kernel-matrix: step $step (limit ${limit} s)"
  t0=$(date +%s)
  rc=0
  timeout -k 10 "$limit" "$@" >"$OUT/$step.log" 2>&1 || rc=$?
  printf '%s\t%s\t%s\t%s\n' "$step" "$rc" "$(($(date +%s) - t0))" "$limit" >>"$OUT/steps.tsv"
  echo "kernel-matrix: step $step: exit $rc after $(($(date +%s) - t0)) s"
  tail -n 3 "$OUT/$step.log" | sed 's/^/  | /'
}

hrb_ctest() {  # STEP CTEST-SELECTION…
  local step=$1
  shift
  hrb_run_step "$step" ctest --test-dir "$BUILD" --output-on-failure -j"${CTEST_JOBS:-2}" \
    --timeout "$(hrb_step_limit "$step")" --output-junit "$OUT/$step.xml" "$@"
}

hrb_run_steps() {
  : >"$OUT/steps.tsv"
  local step
  for step in ${STEPS//,/ }; do
    case $step in
      doctor)
        hrb_run_step doctor sh -c "'$BUILD/harness/hrbench' doctor --json >'$OUT/doctor.json'; \
          rc=\$?; '$BUILD/harness/hrbench' doctor; exit \$rc"
        ;;
      unit) hrb_ctest unit -L unit ;;
      bpf) hrb_ctest bpf -L bpf ;;
      bpf-smoke) hrb_ctest bpf-smoke -L bpf -R "$HRB_BPF_SMOKE_TESTS" ;;
      lsm) hrb_ctest lsm -R "$HRB_LSM_TESTS" ;;
      netns) hrb_ctest netns -L netns -LE slow ;;
      *) echo "kernel-matrix: unknown step $step" >&2; return 3 ;;
    esac
  done
}
