// SPDX-License-Identifier: GPL-2.0
/*
 * C helpers of iscsi_rs.ko: thin wrappers for what Rust cannot call directly
 * (static inlines, macros, fields of structs that are opaque to Rust). Each says
 * why it exists; no decisions are made here.
 */
#include <linux/capability.h>
#include <linux/crc32c.h>
#include <linux/delay.h>
#include <linux/blk-mq.h>
#include <linux/workqueue.h>
#include <linux/scatterlist.h>
#include <net/tcp.h>
#include "bindings.h"

/* CAP_SYS_ADMIN is a macro from the uapi header; keep the capability check in
 * one C line rather than hard-coding the number on the Rust side. */
bool iscsi_rs_capable_admin(void)
{
	return capable(CAP_SYS_ADMIN);
}

/* struct sock is opaque in kernel::bindings: its identity fields for the
 * "connected TCP socket" check of the handoff. */
int iscsi_rs_sk_family(struct sock *sk)
{
	return sk->sk_family;
}

int iscsi_rs_sk_protocol(struct sock *sk)
{
	return sk->sk_protocol;
}

int iscsi_rs_sk_state(struct sock *sk)
{
	return READ_ONCE(sk->sk_state);
}

/* Socket settings of a storage transport, as iscsi_tcp and nvme-tcp set them:
 * no Nagle (PDUs are sent whole with MSG_MORE between parts), and allocations
 * that never recurse into block I/O reclaim or use the task's page frag. */
void iscsi_rs_sk_prepare(struct sock *sk)
{
	tcp_sock_set_nodelay(sk);
	lock_sock(sk);
	sk->sk_allocation = GFP_ATOMIC;
	sk->sk_use_task_frag = false;
	release_sock(sk);
}

/* write_lock_bh() is a macro and the callback fields are in struct sock: swap
 * the callbacks and publish `user` atomically with respect to the callbacks. */
int iscsi_rs_sk_install(struct sock *sk, void *user, const struct iscsi_rs_sk_ops *ops,
			struct iscsi_rs_sk_ops *saved)
{
	write_lock_bh(&sk->sk_callback_lock);
	if (sk->sk_user_data) {
		write_unlock_bh(&sk->sk_callback_lock);
		return -EBUSY;
	}
	saved->data_ready = sk->sk_data_ready;
	saved->state_change = sk->sk_state_change;
	saved->write_space = sk->sk_write_space;
	sk->sk_user_data = user;
	sk->sk_data_ready = ops->data_ready;
	sk->sk_state_change = ops->state_change;
	sk->sk_write_space = ops->write_space;
	write_unlock_bh(&sk->sk_callback_lock);
	return 0;
}

/* The reverse of iscsi_rs_sk_install(); once it returns no callback of ours
 * runs or will run with `user`. */
void iscsi_rs_sk_restore(struct sock *sk, const struct iscsi_rs_sk_ops *saved)
{
	write_lock_bh(&sk->sk_callback_lock);
	sk->sk_user_data = NULL;
	sk->sk_data_ready = saved->data_ready;
	sk->sk_state_change = saved->state_change;
	sk->sk_write_space = saved->write_space;
	write_unlock_bh(&sk->sk_callback_lock);
}

/* read_lock_bh() is a macro: the callbacks read sk_user_data under it. */
void *iscsi_rs_sk_user_lock(struct sock *sk)
{
	read_lock_bh(&sk->sk_callback_lock);
	return sk->sk_user_data;
}

void iscsi_rs_sk_user_unlock(struct sock *sk)
{
	read_unlock_bh(&sk->sk_callback_lock);
}

#ifdef CONFIG_HIGHMEM
#error "iscsi_rs_recv_sg() addresses data pages with sg_virt(): no highmem"
#endif

/* sg_next() and sg_virt() are inlines: receive (non-blocking) up to `len` bytes
 * straight into a command's sg pages from byte `skip` of its buffer, at most 16
 * segments per call. `cursor` remembers where the last call started, so that
 * in-order Data-In does not walk the list from its head every time (that walk
 * was 7% of the guest's CPU on 1 MiB reads). The caller checked the range. */
int iscsi_rs_recv_sg(struct socket *sock, struct scatterlist *sgl, unsigned int nents,
		     size_t skip, size_t len, struct iscsi_rs_sg_cursor *cursor)
{
	struct msghdr msg = { .msg_flags = MSG_DONTWAIT };
	struct scatterlist *sg = sgl;
	struct kvec vec[16];
	unsigned int idx = 0, n = 0;
	size_t at = 0, total = 0;

	if (cursor->sg && cursor->at <= skip) {
		sg = cursor->sg;
		at = cursor->at;
		idx = cursor->idx;
	}
	for (; sg && idx < nents; sg = sg_next(sg), idx++) {
		if (skip - at >= sg->length) {
			at += sg->length;
			continue;
		}
		if (!n) {
			cursor->sg = sg;
			cursor->at = at;
			cursor->idx = idx;
		}
		vec[n].iov_base = sg_virt(sg) + (skip - at);
		vec[n].iov_len = min_t(size_t, sg->length - (skip - at), len - total);
		total += vec[n].iov_len;
		at += sg->length;
		skip = at;
		if (++n == ARRAY_SIZE(vec) || total == len)
			break;
	}
	if (!n)
		return -EINVAL;
	return kernel_recvmsg(sock, &msg, vec, n, total, MSG_DONTWAIT);
}

/* scsi_cmd_to_rq() is a static inline. */
unsigned int iscsi_rs_cmd_unique_tag(struct scsi_cmnd *cmd)
{
	return blk_mq_unique_tag(scsi_cmd_to_rq(cmd));
}

/* class_to_shost() is a container_of macro. */
struct Scsi_Host *iscsi_rs_dev_to_shost(struct device *dev)
{
	return class_to_shost(dev);
}

/* sysfs_attr_init() needs a static lock class key per call site: one for all
 * the host attributes, which lockdep requires for attributes not in .data. */
void iscsi_rs_sysfs_attr_init(struct attribute *attr)
{
	sysfs_attr_init(attr);
}

/* alloc_workqueue() is variadic. WQ_MEM_RECLAIM for the I/O queue: it carries
 * block I/O, so it must make progress under memory pressure. Never for a queue
 * of long-running items: one of them could hold the rescuer for good. */
struct workqueue_struct *iscsi_rs_alloc_workqueue(const char *name, bool long_running)
{
	if (long_running)
		return alloc_workqueue("%s", WQ_UNBOUND, 0, name);
	return alloc_workqueue("%s", WQ_MEM_RECLAIM | WQ_HIGHPRI, 0, name);
}

/* msleep() behind one name of ours, so our bindgen pass need not allowlist
 * delay.h: the wait of a command revocation for accessors inside it. */
void iscsi_rs_sleep_ms(unsigned int ms)
{
	msleep(ms);
}

/* crc32c() behind one name of ours (linux/crc32c.h is not in our bindgen
 * allowlist): the kernel's CRC32C, with CPU instructions where the crypto
 * layer has them, for the digests. */
u32 iscsi_rs_crc32c(u32 crc, const void *p, unsigned int len)
{
	return crc32c(crc, p, len);
}
