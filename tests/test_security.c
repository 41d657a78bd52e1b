/*
 * test_security.c — suite "security": what a hostile server, a hostile
 * name or a careless flag must not get through (docs/operations.md,
 * "Security").
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "kvsplit.h"
#include "kube/json.h"

static int has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* A server's Status message, reason or plain-text body goes into the error
 * detail that the CLI prints and programs log: terminal escapes, bells and
 * new lines from it are replaced (fuzz/kube_client_fuzzer.c found ESC and
 * a new line in a reason getting through). */
Test(security, server_text_in_error_details_carries_no_control_characters)
{
	static const char *const bodies[] = {
		"{\"kind\":\"Status\",\"reason\":\"NotFound\",\"message\":\"x\\u001b[31mred\\u0007\","
		"\"code\":404}",
		"{\"kind\":\"Status\",\"reason\":\"Bad\\nReason\\u001b\",\"code\":409}",
		"upstream \x1b]0;title\x07 error\r\n",
		"{\"kind\":\"Status\",\"reason\":\"NotFound\",\"code\":404,\"details\":"
		"{\"kind\":\"namespaces\",\"name\":\"n\\u001bs\"}}",
	};

	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		int rc = kvs__kube_http_error(i == 2 ? 500 : 404, bodies[i], strlen(bodies[i]),
		                              "get configmaps ns/x", NULL, 0);
		cr_assert_lt(rc, 0);
		cr_assert_not(has_control(kvs_error_last()), "body %zu: detail \"%s\"", i,
		              kvs_error_last());
	}
	/* the text itself is kept, only the control bytes go */
	kvs__kube_http_error(404, bodies[0], strlen(bodies[0]), "get configmaps ns/x", NULL, 0);
	cr_assert(strstr(kvs_error_last(), "[31mred"), "%s", kvs_error_last());
}
