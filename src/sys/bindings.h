/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Headers our own bindgen pass reads (see Kbuild). Only items declared in the
 * allowlisted headers are generated; the rest is reused from kernel::bindings.
 */
#include <linux/miscdevice.h>
#include <linux/fs.h>
#include <linux/net.h>
#include <net/sock.h>
#include <scsi/scsi.h>
#include <scsi/scsi_cmnd.h>
#include <scsi/scsi_device.h>
#include <scsi/scsi_host.h>

/* Static inlines and macros we need, wrapped in src/sys/helpers.c. */
bool iscsi_rs_capable_admin(void);

/* Socket: struct sock is opaque in kernel::bindings, so its fields are reached here. */
struct iscsi_rs_sk_ops {
	void (*data_ready)(struct sock *sk);
	void (*state_change)(struct sock *sk);
	void (*write_space)(struct sock *sk);
};
int iscsi_rs_sk_family(struct sock *sk);
int iscsi_rs_sk_protocol(struct sock *sk);
int iscsi_rs_sk_state(struct sock *sk);
void iscsi_rs_sk_prepare(struct sock *sk);
int iscsi_rs_sk_install(struct sock *sk, void *user, const struct iscsi_rs_sk_ops *ops,
			struct iscsi_rs_sk_ops *saved);
void iscsi_rs_sk_restore(struct sock *sk, const struct iscsi_rs_sk_ops *saved);
void *iscsi_rs_sk_user_lock(struct sock *sk);
void iscsi_rs_sk_user_unlock(struct sock *sk);

/* SCSI. */
unsigned int iscsi_rs_cmd_unique_tag(struct scsi_cmnd *cmd);
struct iscsi_rs_sg_cursor {
	struct scatterlist *sg;	/* NULL, or an entry of the list */
	size_t at;		/* bytes of the buffer before it */
	unsigned int idx;	/* its index */
};
int iscsi_rs_recv_sg(struct socket *sock, struct scatterlist *sgl, unsigned int nents,
		     size_t skip, size_t len, struct iscsi_rs_sg_cursor *cursor);
struct Scsi_Host *iscsi_rs_dev_to_shost(struct device *dev);
void iscsi_rs_sysfs_attr_init(struct attribute *attr);

/* Workqueue: alloc_workqueue() is variadic. */
struct workqueue_struct *iscsi_rs_alloc_workqueue(const char *name, bool long_running);

/* Digests: the kernel's CRC32C (raw register in and out, no inversion). */
u32 iscsi_rs_crc32c(u32 crc, const void *p, unsigned int len);

/* Sleep: the wait in a command revocation. */
void iscsi_rs_sleep_ms(unsigned int ms);
