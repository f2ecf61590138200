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
int iscsi_rs_sock_discard(struct socket *sock);
void iscsi_rs_sk_prepare(struct sock *sk);
int iscsi_rs_sk_install(struct sock *sk, void *user, const struct iscsi_rs_sk_ops *ops,
			struct iscsi_rs_sk_ops *saved);
void iscsi_rs_sk_restore(struct sock *sk, const struct iscsi_rs_sk_ops *saved);
void *iscsi_rs_sk_user_lock(struct sock *sk);
void iscsi_rs_sk_user_unlock(struct sock *sk);
/* One piece of a received skb: returns the bytes used, 0 to stop. */
typedef int (*iscsi_rs_read_cb)(void *ctx, struct sk_buff *skb, unsigned int off, size_t len);
int iscsi_rs_tcp_read(struct sock *sk, void *ctx, iscsi_rs_read_cb cb, int *status);
void iscsi_rs_lock_sock(struct sock *sk);
void iscsi_rs_release_sock(struct sock *sk);
int iscsi_rs_skb_copy(const struct sk_buff *skb, unsigned int off, void *to, unsigned int len);

/* SCSI. */
unsigned int iscsi_rs_cmd_unique_tag(struct scsi_cmnd *cmd);
struct iscsi_rs_sg_cursor {
	struct scatterlist *sg;	/* NULL, or an entry of the list */
	size_t at;		/* bytes of the buffer before it */
	unsigned int idx;	/* its index */
};
int iscsi_rs_skb_to_sg(const struct sk_buff *skb, unsigned int off, struct scatterlist *sgl,
		       unsigned int nents, size_t skip, size_t len,
		       struct iscsi_rs_sg_cursor *cursor, u32 *crc);
struct Scsi_Host *iscsi_rs_dev_to_shost(struct device *dev);

/* Zero-copy transmit: page references on part of a command's buffer (opaque
 * to Rust; see helpers.c). Enough for a 256 KiB segment at any alignment. */
#define ISCSI_RS_MAX_PAGES 72
struct iscsi_rs_pages;
struct iscsi_rs_pages *iscsi_rs_pages_alloc(void);
void iscsi_rs_pages_put(struct iscsi_rs_pages *p);
void iscsi_rs_pages_free(struct iscsi_rs_pages *p);
u32 iscsi_rs_pages_crc32c(struct iscsi_rs_pages *p, u32 crc);
struct queue_limits;
void iscsi_rs_lim_stable_writes(struct queue_limits *lim);
int iscsi_rs_pages_get(struct iscsi_rs_pages *p, struct scatterlist *sgl, unsigned int nents,
		       size_t skip, size_t len, struct iscsi_rs_sg_cursor *cursor);
ssize_t iscsi_rs_pages_send(struct socket *sock, struct iscsi_rs_pages *p, size_t skip,
			    bool more, bool nonblock);
bool iscsi_rs_sk_writeable(struct sock *sk);
u16 iscsi_rs_sk_local_port(struct sock *sk);
void iscsi_rs_tcp_push(struct sock *sk);
void iscsi_rs_sysfs_attr_init(struct attribute *attr);

/* Workqueue: alloc_workqueue() is variadic. */
struct workqueue_struct *iscsi_rs_alloc_workqueue(const char *name, bool long_running);

/* Digests: the kernel's CRC32C (raw register in and out, no inversion). */
u32 iscsi_rs_crc32c(u32 crc, const void *p, unsigned int len);

/* Spinlocks taken with softirqs off: spin_lock_bh() and spin_lock_init()
 * are macros or inlines. */
void iscsi_rs_spin_lock_init(spinlock_t *lock, const char *name, struct lock_class_key *key);
void iscsi_rs_spin_lock_bh(spinlock_t *lock);
void iscsi_rs_spin_unlock_bh(spinlock_t *lock);
/* Test module only (ktests/kunit/helpers.c). */
bool iscsi_rs_kunit_bh_disabled(void);

/* Sleep: the wait in a command revocation. */
void iscsi_rs_sleep_ms(unsigned int ms);
