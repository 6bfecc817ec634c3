# Shared helpers for the scripts/ benchmarks (sourced, not run).
now() { date +%s.%N; }
elapsed() { awk "BEGIN{printf \"%.3f\", $2 - $1}"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
# HRBENCH_BIN: use this binary (e.g. a copy, so a rebuild cannot replace it mid-benchmark).
hrbench_bin() {
  local b=${HRBENCH_BIN:-build/harness/hrbench}
  [ -x "$b" ] || scripts/setup >/dev/null
  echo "$b"
}
