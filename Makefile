# iscsi-rs: one entry point. `make test` is what CI runs; `make demo` shows it.
#   deps    install everything this project needs (idempotent)
#   kernel  build (or reuse) the cached test kernel
#   module  build iscsi_rs.ko against it
#   ctl     build iscsictl
#   test    host unit tests + QEMU cases (+ runner self-test)
#   demo    boot the guest, set up LIO, load the module
#   bench   benchmarks (see issue 7)
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
.DEFAULT_GOAL := help

ENV := . ktests/env.sh
KERNEL_FLAVOUR ?= debug
STAMP := $(or $(ISCSI_RS_CACHE),$(HOME)/.cache/iscsi-rs)/deps.stamp

help:
	@sed -n '2,9p' Makefile | sed 's/^# *//'

# `make deps` reruns its steps only when ktests/deps.sh changes.
deps: $(STAMP)
$(STAMP): ktests/deps.sh
	ktests/deps.sh
	@mkdir -p $(dir $@) && touch $@

kernel: deps
	@$(ENV); ktests/build-kernel.sh $(KERNEL_FLAVOUR) >/dev/null

module: kernel
	@$(ENV); kdir=$$(ktests/build-kernel.sh $(KERNEL_FLAVOUR)); \
	 $(MAKE) -C "$$kdir" M=$(CURDIR) LLVM=1 modules 2>&1 | tee build-module.log; \
	 if grep -E 'warning:|error:' build-module.log; then \
	   echo "module build printed warnings (the kernel's Rust flags must stay clean)"; exit 1; fi

ctl: deps
	@$(ENV); cargo build --release -p iscsictl

unit: deps
	@$(ENV); cargo test --workspace --quiet

# Host tests, the fuzz smoke, the QEMU cases, then the runner's own self-test.
test: deps unit module ctl
	@$(ENV); [ ! -x ktests/fuzz-smoke.sh ] || ktests/fuzz-smoke.sh
	@$(ENV); ktests/run.sh
	@$(ENV); ktests/selftest.sh

demo: deps module ctl
	@$(ENV); ktests/run.sh --demo

clean:
	@$(ENV); kdir=$$(ls -d $$CACHE/kernel-$(KERNEL_FLAVOUR)-* 2>/dev/null | grep -v '\.' | head -1); \
	 [ -z "$$kdir" ] || $(MAKE) -C "$$kdir" M=$(CURDIR) LLVM=1 clean
	rm -rf target build-module.log ktests/out

.PHONY: help deps kernel module ctl unit test demo bench clean
