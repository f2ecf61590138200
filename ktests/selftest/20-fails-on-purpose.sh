# Runner self-test: a case that fails; the runner must count it and exit non-zero.
echo "failing on purpose"
exit 1
