// SPDX-License-Identifier: GPL-2.0
/*
 * C helpers of iscsi_rs.ko: thin wrappers for what Rust cannot call directly
 * (static inlines, macros). Each says why it exists; no logic lives here.
 */
#include <linux/capability.h>
#include "bindings.h"

/* CAP_SYS_ADMIN is a macro from the uapi header; keep the capability check in
 * one C line rather than hard-coding the number on the Rust side. */
bool iscsi_rs_capable_admin(void)
{
	return capable(CAP_SYS_ADMIN);
}
