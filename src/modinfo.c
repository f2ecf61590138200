// SPDX-License-Identifier: GPL-2.0
/*
 * modinfo fields of iscsi_rs.ko that the module! macro of 6.12 cannot emit: the
 * version (Cargo.toml's workspace version, passed in by Kbuild). Name,
 * description, author and license come from module! in src/iscsi_rs.rs.
 */
#include <linux/module.h>

MODULE_VERSION(ISCSI_RS_VERSION);
