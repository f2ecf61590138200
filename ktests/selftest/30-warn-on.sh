# Runner self-test: the script succeeds but the kernel hits a real WARN_ON (LKDTM);
# the runner must fail this case from the kernel log alone.
echo WARNING > /sys/kernel/debug/provoke-crash/DIRECT
