// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suite "iscsi_rs": one case parameterised over the Rust test table
 * (ktests/kunit/cases.rs), so each Rust test shows up as its own KTAP result.
 * Linked into the test module iscsi_rs_kunit.ko only; the suite runs when that
 * module loads.
 */
#include <kunit/test.h>

size_t iscsi_rs_kunit_count(void);
const char *iscsi_rs_kunit_name(size_t index);
bool iscsi_rs_kunit_run(size_t index, char *msg, size_t len);

/* Parameters are index + 1, so that NULL can mean "no more". */
static const void *iscsi_rs_gen(const void *prev, char *desc)
{
	uintptr_t next = (uintptr_t)prev + 1;

	if (next > iscsi_rs_kunit_count())
		return NULL;
	strscpy(desc, iscsi_rs_kunit_name(next - 1), KUNIT_PARAM_DESC_SIZE);
	return (const void *)next;
}

static void iscsi_rs_rust_case(struct kunit *test)
{
	char msg[256];
	size_t index = (uintptr_t)test->param_value - 1;

	if (!iscsi_rs_kunit_run(index, msg, sizeof(msg)))
		KUNIT_FAIL(test, "%s", msg);
}

static struct kunit_case iscsi_rs_cases[] = {
	KUNIT_CASE_PARAM(iscsi_rs_rust_case, iscsi_rs_gen),
	{}
};

static struct kunit_suite iscsi_rs_suite = {
	.name = "iscsi_rs",
	.test_cases = iscsi_rs_cases,
};
kunit_test_suite(iscsi_rs_suite);
