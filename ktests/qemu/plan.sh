#!/bin/bash
# Prints the run plan ("name<TAB>script" per line) for the cases in DIR (relative to
# the repo), optionally only NAMEs. Host runner and guest both use it, so they agree.
#   plan.sh REPO DIR CPUS [NAME...]
# A case whose header (its leading comment lines) says "# guest-cpus: N" needs a
# guest with N vCPUs (default 2): without NAMEs, a boot with CPUS vCPUs runs exactly
# the cases that need CPUS, so a full run is one boot per CPU count (ktests/run.sh
# chains them). A case named explicitly always runs, and checks its CPUs itself.
# "# guest-boot: B" (default 1) puts a case in the B-th boot of its CPU count, so
# that no boot runs long enough to meet the harness's timeout and a crash loses
# only its own boot's cases; PLAN_BOOT=B (without NAMEs) lists only those.
# Bash builtins only: in the debug guest every exec costs 0.1-0.3 s, and two per
# case made the plan take ~20 s of each boot.
repo=$1 dir=$2 cpus=$3; shift 3
for f in "$repo/$dir"/*.sh; do
    [ -f "$f" ] || continue
    name=${f##*/}; name=${name%.sh}; name=${name#[0-9][0-9]-}
    if [ $# -gt 0 ]; then
        wanted=0
        for n in "$@"; do [ "$n" = "$name" ] && wanted=1; done
        [ $wanted = 1 ] || continue
    else
        need=2 boot=1
        while IFS= read -r line; do
            case $line in
            "# guest-cpus:"* | "# guest-boot:"*)
                v=${line#*:}; v=${v#"${v%%[! ]*}"}; v=${v%%[!0-9]*}
                case $line in
                "# guest-cpus:"*) need=${v:-2} ;;
                *) boot=${v:-1} ;;
                esac ;;
            "#"*) ;;
            *) break ;;
            esac
        done < "$f"
        [ "$need" = "$cpus" ] || continue
        [ -z "${PLAN_BOOT:-}" ] || [ "$boot" = "$PLAN_BOOT" ] || continue
    fi
    printf '%s\t%s\n' "$name" "${f#"$repo"/}"
done
