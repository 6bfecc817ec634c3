# Shared helpers for the scripts/ benchmarks (sourced, not run).
now() { date +%s.%N; }
elapsed() { awk "BEGIN{printf \"%.3f\", $2 - $1}"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
hrbench_bin() {
  local b=build/harness/hrbench
  [ -x "$b" ] || scripts/setup >/dev/null
  echo "$b"
}
