#!/usr/bin/env python3
"""Strict KTAP version 1 check of ktests/run.sh output (Documentation/dev-tools/ktap.rst).

Reads FILE (or stdin). Lines before the first top-level "KTAP version 1" are
ignored (the runner streams the guest's progress there). From it on, every line up
to the last top-level result must be a version line, a plan, a result line or a
diagnostic ("#..."); nested tests are indented by 4 spaces per level, open with
their own version line and plan, and end right before their parent's result line.
At each level, results are numbered 1..N with N the plan. After the last
top-level result only the summary "P passed, F failed" may follow, and it must
equal the number of ok / not ok lines at every level.

Prints "ok"/"not ok" lines for what it checked and the tree's counts; exits 1 on
any violation.
  ktests/ktap-check.py [FILE] [--expect-passed P --expect-failed F]
"""
import argparse
import re
import sys

RESULT = re.compile(r"^(ok|not ok) ([0-9]+)( - | |$)([^#]*)(#.*)?$")
PLAN = re.compile(r"^1\.\.([0-9]+)$")
SUMMARY = re.compile(r"^([0-9]+) passed, ([0-9]+) failed$")


class Bad(Exception):
    pass


def indent_of(line):
    stripped = line.lstrip(" ")
    return len(line) - len(stripped), stripped


def parse_level(lines, pos, depth):
    """Parses one test list at `depth` starting at its version line.
    Returns (next position, results [(ok, name, children)])."""
    want = 4 * depth

    def at(i):
        if i >= len(lines):
            raise Bad("output ends inside a test list at depth %d" % depth)
        return lines[i]

    ind, text = indent_of(at(pos))
    if ind != want or text != "KTAP version 1":
        raise Bad("line %d: expected 'KTAP version 1' at indent %d" % (pos + 1, want))
    pos += 1
    ind, text = indent_of(at(pos))
    m = PLAN.match(text)
    if ind != want or not m:
        raise Bad("line %d: expected a plan '1..N' at indent %d, got %r" % (pos + 1, want, lines[pos]))
    planned = int(m.group(1))
    pos += 1
    results = []
    children = None
    while len(results) < planned:
        ind, text = indent_of(at(pos))
        if text.startswith("#"):
            pos += 1
            continue
        if text == "KTAP version 1" and ind == want + 4:
            if children is not None:
                raise Bad("line %d: two nested lists for one test" % (pos + 1))
            pos, children = parse_level(lines, pos, depth + 1)
            continue
        m = RESULT.match(text)
        if not m or ind != want:
            raise Bad("line %d: expected a result line at indent %d, got %r" % (pos + 1, want, lines[pos]))
        number = int(m.group(2))
        if number != len(results) + 1:
            raise Bad("line %d: test number %d, expected %d" % (pos + 1, number, len(results) + 1))
        results.append((m.group(1) == "ok", m.group(4).strip(), children or []))
        children = None
        pos += 1
    if children is not None:
        raise Bad("line %d: nested list without a parent result" % pos)
    return pos, results


def count(results):
    passed = failed = 0
    for ok, _, children in results:
        passed += ok
        failed += not ok
        p, f = count(children)
        passed += p
        failed += f
    return passed, failed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file", nargs="?")
    ap.add_argument("--expect-passed", type=int)
    ap.add_argument("--expect-failed", type=int)
    args = ap.parse_args()
    text = open(args.file, errors="replace").read() if args.file else sys.stdin.read()
    lines = text.splitlines()
    try:
        start = next(i for i, l in enumerate(lines) if l == "KTAP version 1")
    except StopIteration:
        print("not ok - ktap: no top-level 'KTAP version 1' line")
        return 1
    try:
        end, results = parse_level(lines, start, 0)
        rest = [l for l in lines[end:] if l.strip()]
        summaries = [SUMMARY.match(l) for l in rest]
        if not summaries or not summaries[-1]:
            raise Bad("no 'P passed, F failed' line after the last result")
        for l in rest:
            if RESULT.match(l.lstrip(" ")) or l.lstrip(" ") == "KTAP version 1":
                raise Bad("KTAP line after the last top-level result: %r" % l)
        passed, failed = count(results)
        said = (int(summaries[-1].group(1)), int(summaries[-1].group(2)))
        if said != (passed, failed):
            raise Bad("summary says %d passed, %d failed; the tree has %d and %d" % (*said, passed, failed))
        for want, got, what in ((args.expect_passed, passed, "passed"), (args.expect_failed, failed, "failed")):
            if want is not None and want != got:
                raise Bad("%d %s, expected %d" % (got, what, want))
    except Bad as e:
        print("not ok - ktap: %s" % e)
        return 1
    nested = sum(1 for _, _, c in results if c)
    print("ok - ktap: %d tests (%d with nested subtests), %d passed, %d failed" % (len(results), nested, passed, failed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
