/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Headers our own bindgen pass reads (see Kbuild). Only items declared in the
 * allowlisted headers are generated; the rest is reused from kernel::bindings.
 */
#include <linux/miscdevice.h>
#include <linux/fs.h>
#include <linux/net.h>
#include <net/sock.h>
#include <scsi/scsi_cmnd.h>
#include <scsi/scsi_device.h>
#include <scsi/scsi_host.h>

/* Static inlines and macros we need, wrapped in src/sys/helpers.c. */
bool iscsi_rs_capable_admin(void);
