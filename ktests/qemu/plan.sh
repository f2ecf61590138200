#!/bin/bash
# Prints the run plan ("name<TAB>script" per line) for the cases in DIR (relative to
# the repo), optionally only NAMEs. Host runner and guest both use it, so they agree.
#   plan.sh REPO DIR CPUS [NAME...]
# A case whose header says "# guest-cpus: N" needs a guest with N vCPUs (default 2):
# without NAMEs, a boot with CPUS vCPUs runs exactly the cases that need CPUS, so a
# full run is one boot per CPU count (ktests/run.sh chains them). A case named
# explicitly always runs, and checks its CPUs itself.
repo=$1 dir=$2 cpus=$3; shift 3
for f in "$repo/$dir"/*.sh; do
    [ -f "$f" ] || continue
    name=$(basename "$f" .sh); name=${name#[0-9][0-9]-}
    if [ $# -gt 0 ]; then
        printf '%s\n' "$@" | grep -qx -- "$name" || continue
    else
        need=$(sed -n 's/^# guest-cpus: *\([0-9]*\).*/\1/p' "$f" | head -1)
        [ "${need:-2}" = "$cpus" ] || continue
    fi
    printf '%s\t%s\n' "$name" "${f#"$repo"/}"
done
