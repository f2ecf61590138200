# iscsi-rs: one entry point. `make test` is what CI runs; `make demo` shows it.
#   deps    install everything this project needs (idempotent)
#   kernel  build (or reuse) the cached test kernel
#   module  build iscsi_rs.ko against it (KDIR=/lib/modules/$(uname -r)/build: the running kernel)
#   ctl     build iscsictl and iscsi-faultd (issue 6 test tools)
#   test    host unit tests + QEMU cases (+ runner self-test)
#   install install the module, iscsictl, units, man pages, completions (PREFIX, DESTDIR)
#   install-dkms  the module's sources + dkms.conf to /usr/src/iscsi-rs-VERSION (DESTDIR)
#   check-pkg  what ships: module contents and modinfo, `make install DESTDIR=` (part of test)
#   demo    boot the guest, log in to LIO for real: a remote disk, ext4, a file read back (timed)
#   bench   iscsi_rs vs open-iscsi vs nvme-tcp vs tcm_loop, 5 rounds -> bench/results (issue 14)
#   bench-quick  one short round of it (part of test; checks it runs, not speed)
#   bench-profile  perf profiles of iscsi_rs, open-iscsi and nvme-tcp -> bench/results/profile
#   bench-ab  QD32 two-job read, iscsi_rs 2 connections vs open-iscsi alternating,
#             CPU per I/O -> bench/results/ab (issue 16's goal row)
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
.DEFAULT_GOAL := help

ENV := . ktests/env.sh
KERNEL_FLAVOUR ?= debug
STAMP := $(or $(ISCSI_RS_CACHE),$(HOME)/.cache/iscsi-rs)/deps.stamp

help:
	@sed -n '2,/^[^#]/s/^# *//p' Makefile

# `make deps` reruns its steps only when ktests/deps.sh changes.
deps: $(STAMP)
$(STAMP): ktests/deps.sh
	ktests/deps.sh
	@mkdir -p $(dir $@) && touch $@

kernel: deps
	@$(ENV); ktests/build-kernel.sh $(KERNEL_FLAVOUR) >/dev/null

# kbuild's dependency files name kernel headers relative to the kernel tree, so a
# build against another tree (other flavour or cache key) would reuse stale objects:
# .module-kdir records the tree and a change cleans first. `make bench` builds its
# own copy (ktests/bench/build-module.sh) and leaves this iscsi_rs.ko alone.
# KDIR builds against another kernel tree (e.g. the running kernel's
# /lib/modules/$(uname -r)/build, see README) instead of the cached test kernel;
# LLVM=1 only when that kernel was built with clang (the test kernel is).
module: $(if $(KDIR),,kernel)
	@$(ENV); kdir=$(or $(KDIR),$$(ktests/build-kernel.sh $(KERNEL_FLAVOUR))); \
	 llvm=$$(grep -qx 'CONFIG_CC_IS_CLANG=y' "$$kdir/.config" && echo LLVM=1 || true); \
	 if [ "$$(cat .module-kdir 2>/dev/null)" != "$$kdir" ]; then \
	   $(MAKE) -C "$$kdir" M=$(CURDIR) $$llvm clean >/dev/null; echo "$$kdir" > .module-kdir; fi; \
	 $(MAKE) -C "$$kdir" M=$(CURDIR) $$llvm modules 2>&1 | tee build-module.log; \
	 if grep -E 'warning:|error:' build-module.log; then \
	   echo "module build printed warnings (the kernel's Rust flags must stay clean)"; exit 1; fi

ctl: deps
	@$(ENV); cargo build --release -p iscsictl -p iscsi-faultd -p iscsi-ioctl-fuzz

# Host tests, plus the guard rails: rustfmt (the cargo crates and the kernel
# crate, which rustfmt follows from its root) and clippy with warnings as errors.
unit: deps
	@$(ENV); cargo fmt --all --check && rustfmt --check --edition 2021 src/iscsi_rs.rs
	@$(ENV); cargo clippy --workspace --all-targets --quiet -- -D warnings
	@$(ENV); cargo test --workspace --quiet

# Host tests, the fuzz smoke, the QEMU cases, then the runner's own self-test.
test: deps unit module ctl
	@$(ENV); [ ! -x ktests/fuzz-smoke.sh ] || ktests/fuzz-smoke.sh
	@$(MAKE) --no-print-directory check-pkg
	@$(ENV); ktests/run.sh
	@$(ENV); GUEST_CPUS=4 KTEST_OUT=$(CURDIR)/ktests/out-4cpu ktests/run.sh
	@$(ENV); ktests/selftest.sh
	@$(MAKE) --no-print-directory bench-quick

demo: deps module ctl
	@$(ENV); ktests/run.sh --demo

# Installs what `make module ctl` built (it builds nothing but the man pages and
# completions): PREFIX (default /usr/local), DESTDIR (staging root; then depmod
# is left to the target system), KVER (default: the module's own vermagic).
install:
	@$(ENV); pkg/install.sh

# The module's sources and dkms.conf to $(DESTDIR)/usr/src/iscsi-rs-VERSION.
install-dkms:
	@pkg/install-dkms.sh

# The shipped module holds no test code and carries its modinfo; `make install
# DESTDIR=…` installs every file it should and systemd accepts the units.
check-pkg: deps module ctl
	@$(ENV); ktests/check-module.sh
	@$(ENV); ktests/install-test.sh

# Builds the non-debug kernel and a module for it, boots the guest with all host CPUs
# and compares iscsi_rs (1 and 2 connections), open-iscsi, nvme-tcp and tcm_loop on
# one brd RAM disk: 5 interleaved rounds of 20 s jobs (~90 min under TCG). Writes
# bench/results/latest.{md,png,csv} and latency-cdf.png.
bench: deps ctl
	@$(ENV); ktests/bench/run.sh full

# One round of 3 s jobs into ktests/bench/out/quick-results: proves the bench runs
# end to end (every row of the table present); asserts nothing about speed.
bench-quick: deps ctl
	@$(ENV); ktests/bench/run.sh quick

bench-profile: deps ctl
	@$(ENV); ktests/bench/run.sh profile

bench-ab: deps ctl
	@$(ENV); ktests/bench/run.sh ab

clean:
	@$(ENV); kdir=$$(ls -d $$CACHE/kernel-$(KERNEL_FLAVOUR)-* 2>/dev/null | grep -v '\.' | head -1); \
	 [ -z "$$kdir" ] || $(MAKE) -C "$$kdir" M=$(CURDIR) LLVM=1 clean
	rm -rf target build-module.log .module-kdir ktests/out ktests/out-4cpu ktests/bench/out

.PHONY: bench-profile bench-ab help deps kernel module ctl unit test demo bench bench-quick clean install install-dkms check-pkg
