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
#include <linux/bvec.h>
#include <linux/highmem.h>
#include <linux/slab.h>
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

/* Sends what MSG_MORE held back: uncorking pushes the pending frames (the
 * socket has no Nagle, so nothing else waits). */
void iscsi_rs_tcp_push(struct sock *sk)
{
	tcp_sock_set_cork(sk, false);
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
#error "iscsi_rs_skb_to_sg() addresses data pages with sg_virt(): no highmem"
#endif

/* The entry of a command's sg list holding byte `skip` of its buffer (NULL if
 * the list is shorter), and in `*in` the offset of that byte within it. Starts
 * from `cursor` when it is at or before `skip` (in-order Data-In and Data-Out
 * would otherwise walk the list from its head on every call: that walk was 7%
 * of the guest's CPU on 1 MiB reads), and leaves the cursor at the entry. */
static struct scatterlist *iscsi_rs_sg_seek(struct scatterlist *sgl, unsigned int nents,
					    size_t skip, struct iscsi_rs_sg_cursor *cursor,
					    unsigned int *idx, size_t *in)
{
	struct scatterlist *sg = sgl;
	size_t at = 0;

	*idx = 0;
	if (cursor->sg && cursor->at <= skip) {
		sg = cursor->sg;
		at = cursor->at;
		*idx = cursor->idx;
	}
	for (; sg && *idx < nents; sg = sg_next(sg), (*idx)++) {
		if (skip - at < sg->length) {
			cursor->sg = sg;
			cursor->at = at;
			cursor->idx = *idx;
			*in = skip - at;
			return sg;
		}
		at += sg->length;
	}
	return NULL;
}

/* sg_next() and sg_virt() are inlines: copy `len` bytes of `skb` from byte
 * `off` straight into a command's sg pages at byte `skip` of its buffer (the
 * Data-In payload, one copy from the socket's buffers). With `crc` set, the bytes placed are folded into that CRC32C
 * register (the data digest) while still in cache. The caller checked both
 * ranges. */
int iscsi_rs_skb_to_sg(const struct sk_buff *skb, unsigned int off, struct scatterlist *sgl,
		       unsigned int nents, size_t skip, size_t len,
		       struct iscsi_rs_sg_cursor *cursor, u32 *crc)
{
	struct scatterlist *sg;
	unsigned int idx;
	size_t in = 0, done = 0;

	for (sg = iscsi_rs_sg_seek(sgl, nents, skip, cursor, &idx, &in);
	     sg && idx < nents && done < len; sg = sg_next(sg), idx++, in = 0) {
		size_t n = min_t(size_t, sg->length - in, len - done);
		int err = skb_copy_bits(skb, off + done, sg_virt(sg) + in, n);

		if (err)
			return err;
		if (crc)
			*crc = crc32c(*crc, sg_virt(sg) + in, n);
		done += n;
	}
	return done == len ? 0 : -EINVAL;
}

/* tcp_read_sock() wants a read_descriptor_t (a union inside): receive what
 * is queued on `sk`, whose lock the caller holds, handing each skb piece to
 * `cb`, which returns the bytes it used (0 stops the pass). `status` says,
 * read under the same lock, whether the peer closed (1), the socket failed
 * (-errno) or neither (0). Returns the bytes used or a negative errno. */
struct iscsi_rs_read_ctx {
	void *ctx;
	iscsi_rs_read_cb cb;
};

static int iscsi_rs_read_actor(read_descriptor_t *desc, struct sk_buff *skb,
			       unsigned int off, size_t len)
{
	struct iscsi_rs_read_ctx *rc = desc->arg.data;

	return rc->cb(rc->ctx, skb, off, len);
}

int iscsi_rs_tcp_read(struct sock *sk, void *ctx, iscsi_rs_read_cb cb, int *status)
{
	struct iscsi_rs_read_ctx rc = { .ctx = ctx, .cb = cb };
	read_descriptor_t desc = { .arg.data = &rc, .count = 1 };
	int ret, err;

	ret = tcp_read_sock(sk, &desc, iscsi_rs_read_actor);
	err = READ_ONCE(sk->sk_err);
	if (err)
		*status = -err;
	else if (READ_ONCE(sk->sk_shutdown) & RCV_SHUTDOWN)
		*status = 1;
	else
		*status = 0;
	return ret;
}

/* lock_sock() is an inline: the RX work reads the socket with it held. */
void iscsi_rs_lock_sock(struct sock *sk)
{
	lock_sock(sk);
}

void iscsi_rs_release_sock(struct sock *sk)
{
	release_sock(sk);
}

/* Zero-copy transmit: references on the pages holding part of a command's
 * buffer, as a bio_vec array TCP can splice from (MSG_SPLICE_PAGES). Our own
 * page references keep the pages alive for as long as the array holds them,
 * whatever happens to the command; TCP takes its own for the skbs. */
struct iscsi_rs_pages {
	unsigned int n;
	size_t len;
	struct bio_vec vec[ISCSI_RS_MAX_PAGES];
};

struct iscsi_rs_pages *iscsi_rs_pages_alloc(void)
{
	return kzalloc(sizeof(struct iscsi_rs_pages), GFP_KERNEL);
}

void iscsi_rs_pages_put(struct iscsi_rs_pages *p)
{
	unsigned int i;

	for (i = 0; i < p->n; i++)
		put_page(p->vec[i].bv_page);
	p->n = 0;
	p->len = 0;
}

void iscsi_rs_pages_free(struct iscsi_rs_pages *p)
{
	iscsi_rs_pages_put(p);
	kfree(p);
}

/* Takes references on the pages of bytes `skip..skip + len` of the sg buffer
 * (dropping what `p` held). -EOPNOTSUPP if a page may not be spliced
 * (sendpage_ok(): slab memory), -E2BIG if more than ISCSI_RS_MAX_PAGES are
 * needed, -EINVAL if the list is shorter than the range; `p` is then empty.
 * Does not sleep. */
int iscsi_rs_pages_get(struct iscsi_rs_pages *p, struct scatterlist *sgl, unsigned int nents,
		       size_t skip, size_t len, struct iscsi_rs_sg_cursor *cursor)
{
	struct scatterlist *sg;
	unsigned int idx;
	size_t in = 0, done = 0;
	int err = -EINVAL;

	iscsi_rs_pages_put(p);
	for (sg = iscsi_rs_sg_seek(sgl, nents, skip, cursor, &idx, &in);
	     sg && idx < nents && done < len; sg = sg_next(sg), idx++, in = 0) {
		size_t n = min_t(size_t, sg->length - in, len - done);
		size_t off = sg->offset + in;
		struct page *page = nth_page(sg_page(sg), off >> PAGE_SHIFT);

		off &= ~PAGE_MASK;
		while (n) {
			size_t k = min_t(size_t, n, PAGE_SIZE - off);

			if (p->n == ISCSI_RS_MAX_PAGES) {
				err = -E2BIG;
				goto fail;
			}
			if (!sendpage_ok(page)) {
				err = -EOPNOTSUPP;
				goto fail;
			}
			get_page(page);
			bvec_set_page(&p->vec[p->n++], page, k, off);
			page = nth_page(page, 1);
			off = 0;
			n -= k;
			done += k;
		}
	}
	if (done != len)
		goto fail;
	p->len = len;
	return 0;
fail:
	iscsi_rs_pages_put(p);
	return err;
}

/* Sends the pages `p` holds by reference from byte `skip` of them on.
 * `more` sets MSG_MORE (more of the PDU, or another PDU, follows). Blocking,
 * it returns once all is queued; with `nonblock` it stops when the send
 * buffer is full. Returns the bytes queued by this call, or an error if none
 * could be for another reason than a full buffer. */
ssize_t iscsi_rs_pages_send(struct socket *sock, struct iscsi_rs_pages *p, size_t skip,
			    bool more, bool nonblock)
{
	struct msghdr msg = {
		.msg_flags = MSG_SPLICE_PAGES | MSG_NOSIGNAL | (more ? MSG_MORE : 0) |
			     (nonblock ? MSG_DONTWAIT : 0),
	};
	ssize_t sent = 0;

	if (skip > p->len)
		return -EINVAL;
	iov_iter_bvec(&msg.msg_iter, ITER_SOURCE, p->vec, p->n, p->len);
	iov_iter_advance(&msg.msg_iter, skip);
	while (msg_data_left(&msg)) {
		int ret = sock_sendmsg(sock, &msg);

		if (ret == -EAGAIN && nonblock)
			break;
		if (ret < 0)
			return ret;
		if (ret == 0)
			return -EPIPE;
		sent += ret;
	}
	return sent;
}

/* Reads and throws away what a socket we gave up has received (at most
 * 16 MiB a call), without blocking: the peer's data after our FIN must not
 * fill the receive window, or its own FIN could not come in. */
int iscsi_rs_sock_discard(struct socket *sock)
{
	struct msghdr msg = {};
	int total = 0;

	while (total < (16 << 20)) {
		int n;

		iov_iter_discard(&msg.msg_iter, ITER_DEST, 1 << 20);
		n = sock_recvmsg(sock, &msg, MSG_DONTWAIT);
		if (n <= 0)
			break;
		total += n;
	}
	return total;
}

/* sk_stream_is_writeable() is a static inline: whether a sender that met a
 * full send buffer may try again (the space TCP's write_space waits for). */
bool iscsi_rs_sk_writeable(struct sock *sk)
{
	return sk_stream_is_writeable(sk);
}

/* inet_sk() is a static inline: the socket's local port, host order (0 while
 * it has none). */
u16 iscsi_rs_sk_local_port(struct sock *sk)
{
	return ntohs(inet_sk(sk)->inet_sport);
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

/* Folds the bytes the page references of @p name into @crc: the data digest
 * of a segment sent by reference. The caller keeps the pages stable (stable
 * writes on the queue) until they are sent. */
u32 iscsi_rs_pages_crc32c(struct iscsi_rs_pages *p, u32 crc)
{
	unsigned int i;

	for (i = 0; i < p->n; i++) {
		struct bio_vec *bv = &p->vec[i];
		void *va = kmap_local_page(bv->bv_page);

		crc = crc32c(crc, va + bv->bv_offset, bv->bv_len);
		kunmap_local(va);
	}
	return crc;
}

/* The queue of a device whose data digests are computed over pages sent by
 * reference: those pages must not change while a write is in flight. */
void iscsi_rs_lim_stable_writes(struct queue_limits *lim)
{
	lim->features |= BLK_FEAT_STABLE_WRITES;
}

/* skb_copy_bits() behind one name of ours (linux/skbuff.h is not in our
 * bindgen allowlist): header bytes of a received skb into our buffer. */
int iscsi_rs_skb_copy(const struct sk_buff *skb, unsigned int off, void *to, unsigned int len)
{
	return skb_copy_bits(skb, off, to, len);
}

/* spin_lock_init() is a macro that makes its own lockdep class per call site;
 * the Rust lock passes the class of its own call site instead. */
void iscsi_rs_spin_lock_init(spinlock_t *lock, const char *name, struct lock_class_key *key)
{
#ifdef CONFIG_DEBUG_SPINLOCK
	__raw_spin_lock_init(spinlock_check(lock), name, key, LD_WAIT_CONFIG);
#else
	spin_lock_init(lock);
#endif
}

/* spin_lock_bh()/spin_unlock_bh() are inlines: the session state is shared
 * with the socket callbacks, which run in softirq. */
void iscsi_rs_spin_lock_bh(spinlock_t *lock)
{
	spin_lock_bh(lock);
}

void iscsi_rs_spin_unlock_bh(spinlock_t *lock)
{
	spin_unlock_bh(lock);
}
