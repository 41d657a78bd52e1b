/*
 * exec_cred_fuzzer.c — what an exec credential plugin prints on stdout
 * (kube/exec.c kvs__exec_cred_parse), from arbitrary bytes. Byte 0 picks
 * the apiVersion the kubeconfig asks for (v1 or v1beta1), the rest is the
 * output. Properties:
 *
 *  - accepted: a token (no line break in it) or a certificate and a key,
 *    both; lengths match; an expiry only from a valid RFC 3339 time;
 *  - refused: KVS_ECONFIG (or KVS_ENOMEM) with nothing left in *out, and a
 *    detail that quotes neither the token nor the client key the output
 *    carried (credentials never reach messages).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "kvsplit.h"
#include "kube/exec.h"

#define FAIL() fail(__LINE__)
static void fail(int line)
{
	fprintf(stderr, "exec_cred_fuzzer.c:%d: property violated (last error: %s)\n", line,
	        kvs_error_last());
	abort();
}

/* A status string of the output, when the output is an object that has it. */
static const char *secret_of(const cJSON *o, const char *field)
{
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "status");
	const cJSON *v = cJSON_IsObject(st) ? cJSON_GetObjectItemCaseSensitive(st, field) : NULL;

	return cJSON_IsString(v) && v->valuestring && strlen(v->valuestring) >= 6 ? v->valuestring
	                                                                           : NULL;
}

/* The detail may quote kind and apiVersion: a secret equal to a part of
 * them would be found there without being leaked. */
static int quoted_elsewhere(const cJSON *o, const char *secret)
{
	static const char *const fields[] = { "kind", "apiVersion" };

	for (size_t i = 0; i < 2; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, fields[i]);
		if (cJSON_IsString(v) && v->valuestring && strstr(v->valuestring, secret))
			return 1;
	}
	/* the fixed words of kvs__exec_cred_parse's messages */
	return strstr("exec plugin fuzz-plugin of user u client.authentication.k8s.io/v1beta1 "
	              "did not print an ExecCredential: its output is not a JSON object; "
	              "kind is missing, not ExecCredential; printed an ExecCredential of "
	              "apiVersion (none), but the kubeconfig asks for; without a status; whose "
	              "status has a field that is not a string; with neither a token nor a client "
	              "certificate; with clientCertificateData and clientKeyData not both set; a "
	              "token that contains a line break; whose expirationTimestamp is not an "
	              "RFC 3339 time; out of memory running an exec credential plugin",
	              secret) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	kvs__exec_conf x;
	kvs__exec_cred c;
	const char *p;
	size_t n;
	cJSON *o;
	int rc;

	if (size < 1 || size > (1u << 20))
		return 0;
	p = (const char *)data + 1;
	n = size - 1;
	memset(&x, 0, sizeof(x));
	x.user = (char *)"u";
	x.api_version = (char *)((data[0] & 1) ? "client.authentication.k8s.io/v1beta1"
	                                       : "client.authentication.k8s.io/v1");
	x.command = (char *)"fuzz-plugin";
	memset(&c, 0, sizeof(c));
	o = cJSON_ParseWithLength(p, n);
	rc = kvs__exec_cred_parse(&c, &x, "exec plugin fuzz-plugin of user u", p, n);
	if (rc == 0) {
		if (!c.token && !(c.cert && c.key))
			FAIL();
		if (!c.cert != !c.key)
			FAIL();
		if (c.token && (!c.token[0] || strpbrk(c.token, "\r\n")))
			FAIL();
		if ((c.cert && c.cert_len != strlen((char *)c.cert)) ||
		    (c.key && c.key_len != strlen((char *)c.key)) || c.expiry_ms < 0)
			FAIL();
	} else {
		const char *tok = secret_of(o, "token"), *key = secret_of(o, "clientKeyData");
		if ((rc != KVS_ECONFIG && rc != KVS_ENOMEM) || c.token || c.cert || c.key)
			FAIL();
		if (tok && !quoted_elsewhere(o, tok) && strstr(kvs_error_last(), tok))
			FAIL();
		if (key && !quoted_elsewhere(o, key) && strstr(kvs_error_last(), key))
			FAIL();
	}
	kvs__exec_cred_clear(&c);
	cJSON_Delete(o);
	return 0;
}
