// SPDX-License-Identifier: GPL-2.0
/*
 * The C helpers of src/sys/helpers.c, compiled a second time for the test module
 * iscsi_rs_kunit.ko: the `src/sys` wrappers it tests call them. A separate object
 * because kbuild warns when one object is linked into two modules.
 */
#include "../../src/sys/helpers.c"
