// SPDX-License-Identifier: GPL-2.0
/*
 * The C helpers of src/sys/helpers.c, compiled a second time for the test module
 * iscsi_rs_kunit.ko: the `src/sys` wrappers it tests call them. A separate object
 * because kbuild warns when one object is linked into two modules.
 */
#include "../../src/sys/helpers.c"

/* For the SpinLockBh case: whether softirqs are off on this CPU (in_softirq()
 * is a macro over the preempt count). */
bool iscsi_rs_kunit_bh_disabled(void)
{
	return in_softirq();
}
