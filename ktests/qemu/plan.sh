#!/bin/bash
# Prints the run plan ("name<TAB>script" per line) for the cases in DIR (relative to
# the repo), optionally only NAMEs. Host runner and guest both use it, so they agree.
#   plan.sh REPO DIR [NAME...]
repo=$1 dir=$2; shift 2
for f in "$repo/$dir"/*.sh; do
    [ -f "$f" ] || continue
    name=$(basename "$f" .sh); name=${name#[0-9][0-9]-}
    if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx -- "$name"; then continue; fi
    printf '%s\t%s\n' "$name" "${f#"$repo"/}"
done
