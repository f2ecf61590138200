# Runner self-test: a passing case whose finer-grained results (one ok, one not ok)
# must nest under it in the KTAP output and fail it.
echo "ok selftest: sub-pass" >> "$OUT/subtests-selftest"
echo "not ok selftest: sub-fail" >> "$OUT/subtests-selftest"
