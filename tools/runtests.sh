#!/bin/bash
# tools/runtests.sh - run quickfed's tests and print "OK name" / "FAIL name" / "SKIP name"
# SPDX-License-Identifier: ISC
# per test and a closing "N passed, N failed, N skipped" line.
# Usage: tools/runtests.sh unit|integ|all BUILDDIR
# Unit tests are the cmocka binaries BUILDDIR/tests/test_*; integration tests are
# tests/integ/NN-*.sh (exit 0 pass, 77 skip, anything else fail), run with QF_BUILD=BUILDDIR.
set -u
mode=${1:-all}
B=${2:-build/san}
export QF_BUILD=$B QF_TOP=$PWD
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=66}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
logdir=$B/test-logs
mkdir -p "$logdir/unit" "$logdir/integ"
pass=0 fail=0 skip=0
failed=""

run_one() {
	local name=$1; shift
	local log=$logdir/$name.log
	local t0=$SECONDS rc
	"$@" >"$log" 2>&1
	rc=$?
	if [ $rc -eq 0 ]; then
		pass=$((pass + 1)); echo "OK   $name ($((SECONDS - t0))s)"
	elif [ $rc -eq 77 ]; then
		skip=$((skip + 1)); echo "SKIP $name: $(grep -m1 '^SKIP' "$log" || true)"
	else
		fail=$((fail + 1)); failed="$failed $name"
		echo "FAIL $name (exit $rc, $((SECONDS - t0))s) -- last lines of $log:"
		tail -n 60 "$log" | sed 's/^/    | /'
	fi
}

if [ "$mode" = unit ] || [ "$mode" = all ]; then
	# the module layers have no include cycle (README, "Layers")
	run_one "unit/module-deps" python3 tools/deps.py
	for t in "$B"/tests/test_*; do
		[ -x "$t" ] || continue
		run_one "unit/$(basename "$t")" "$t"
	done
fi
if [ "$mode" = integ ] || [ "$mode" = all ]; then
	for t in tests/integ/[0-9]*.sh; do
		[ -f "$t" ] || continue
		run_one "integ/$(basename "$t" .sh)" timeout 600 bash "$t"
	done
fi
[ -n "$failed" ] && echo "failed:$failed"
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
