/*
 * fixture.c — the backend every suite runs against, and test data.
 *
 * fx_backend() picks the backend from $KVS_TEST_BACKEND: the in-memory one
 * (a fresh cluster per call) by default, the Kubernetes backend against the
 * API test server for "kube" / "kube-tls" (tests/support/fixture_kube.c).
 * fx_random() and fx_json() make deterministic data fast enough to generate
 * the 64-100 MiB values the store tests use.
 */
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

const char *fx_backend_kind(void)
{
	const char *k = getenv("KVS_TEST_BACKEND");

	if (!k || !*k)
		return "memory";
	return k;
}

static int kind_is_kube(const char *k, int *tls)
{
	*tls = strcmp(k, "kube-tls") == 0;
	return *tls || strcmp(k, "kube") == 0;
}

int fx_backend(kvs_backend **out)
{
	const char *k = fx_backend_kind();
	int tls;

	*out = NULL;
	if (strcmp(k, "memory") == 0)
		return kvs_backend_mem(out, NULL);
	if (kind_is_kube(k, &tls))
		return fx_kube_backend(out, tls);
	return kvs_error_set(KVS_ECONFIG, "KVS_TEST_BACKEND=%s: want memory, kube or kube-tls", k);
}

int fx_backend_peer(kvs_backend **out, kvs_backend *b)
{
	const char *k = fx_backend_kind();
	int tls;

	*out = NULL;
	if (strcmp(k, "memory") == 0)
		return kvs_backend_mem_clone(out, b);
	if (kind_is_kube(k, &tls))
		return fx_kube_backend_peer(out, b);
	return kvs_error_set(KVS_ECONFIG, "KVS_TEST_BACKEND=%s: want memory, kube or kube-tls", k);
}

int fx_compact(kvs_backend *b)
{
	const char *k = fx_backend_kind();
	int tls;

	if (strcmp(k, "memory") == 0) {
		kvs_mem_compact(b);
		return 0;
	}
	if (kind_is_kube(k, &tls))
		return fx_kube_compact(b);
	return kvs_error_set(KVS_ECONFIG, "KVS_TEST_BACKEND=%s: want memory, kube or kube-tls", k);
}

int fx_touch(kvs_backend *b)
{
	const char *k = fx_backend_kind();
	int tls;

	if (strcmp(k, "memory") == 0)
		return 0;
	if (kind_is_kube(k, &tls))
		return fx_kube_touch(b);
	return kvs_error_set(KVS_ECONFIG, "KVS_TEST_BACKEND=%s: want memory, kube or kube-tls", k);
}

/* ------------------------------------------------------------------------ */
/* Data                                                                     */

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void fx_random(void *buf, size_t len, uint64_t seed)
{
	unsigned char *p = buf;
	uint64_t s = seed;

	while (len >= 8) {
		uint64_t v = splitmix64(&s);
		memcpy(p, &v, 8);
		p += 8;
		len -= 8;
	}
	if (len) {
		uint64_t v = splitmix64(&s);
		memcpy(p, &v, len);
	}
}

/* Appenders into a record buffer that is always large enough. */
static char *put_s(char *p, const char *s)
{
	size_t n = strlen(s);

	memcpy(p, s, n);
	return p + n;
}

static char *put_u(char *p, uint64_t v)
{
	char tmp[20];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = tmp[--n];
	return p;
}

static char *put_2(char *p, unsigned v)
{
	*p++ = (char)('0' + v / 10 % 10);
	*p++ = (char)('0' + v % 10);
	return p;
}

static char *put_hex(char *p, uint64_t v, int digits)
{
	static const char hx[] = "0123456789abcdef";

	while (digits--) {
		*p++ = hx[v & 15];
		v >>= 4;
	}
	return p;
}

/* A wall-clock time that only moves forward, in whole seconds. */
typedef struct fx_time {
	unsigned y, mo, d, h, mi, s;
} fx_time;

static void time_add(fx_time *t, unsigned secs)
{
	static const unsigned mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	t->s += secs;
	t->mi += t->s / 60;
	t->s %= 60;
	t->h += t->mi / 60;
	t->mi %= 60;
	while (t->h >= 24) {
		t->h -= 24;
		unsigned md = mdays[t->mo - 1] + (t->mo == 2 && t->y % 4 == 0);
		if (++t->d > md) {
			t->d = 1;
			if (++t->mo > 12) {
				t->mo = 1;
				t->y++;
			}
		}
	}
}

static char *put_time(char *p, const fx_time *t)
{
	p = put_u(p, t->y);
	*p++ = '-';
	p = put_2(p, t->mo);
	*p++ = '-';
	p = put_2(p, t->d);
	*p++ = 'T';
	p = put_2(p, t->h);
	*p++ = ':';
	p = put_2(p, t->mi);
	*p++ = ':';
	p = put_2(p, t->s);
	*p++ = 'Z';
	return p;
}

/* "<wf>-<10 digits>", the shape of an Argo node id. */
static char *put_id(char *p, const char *wf, uint64_t id)
{
	p = put_s(p, wf);
	*p++ = '-';
	for (int i = 0; i < 10; i++) {
		*p++ = (char)('0' + id % 10);
		id /= 10;
	}
	return p;
}

static const char *const templates[] = {
	"fetch-shard", "process-item", "merge-results", "validate-output",
	"train-model", "upload-artifacts", "notify-slack", "cleanup-workspace"
};

#define FX_REC_MAX 1024

/*
 * Argo Workflows' status.nodes: a map from node id to node record, with
 * varied ids, increasing timestamps, a pool of hosts and templates, so lz4
 * compresses it like the real thing (about 6x). The output is exactly `len`
 * bytes and valid JSON whenever len >= 12: records that do not fit are
 * replaced by spaces before the closing braces.
 */
void fx_json(char *buf, size_t len, uint64_t seed)
{
	uint64_t s = seed ^ 0x6a736f6e66697874ull;
	char wf[16], rec[FX_REC_MAX];
	size_t pos = 0;
	const char *head = "{\"nodes\":{";
	fx_time t = { 2026, 1 + (unsigned)(seed % 12), 1 + (unsigned)(seed % 28), 8, 0, 0 };
	uint64_t next_id = splitmix64(&s);
	unsigned step = 0;

	if (len < 12) {
		memset(buf, ' ', len);
		if (len >= 2) {
			buf[0] = '{';
			buf[len - 1] = '}';
		}
		return;
	}
	{
		uint64_t r = splitmix64(&s);
		char *p = put_s(wf, "wf-");
		for (int i = 0; i < 5; i++, r /= 26)
			*p++ = (char)('a' + r % 26);
		*p = '\0';
	}
	memcpy(buf, head, strlen(head));
	pos = strlen(head);
	for (;;) {
		uint64_t r1 = splitmix64(&s), r2 = splitmix64(&s);
		uint64_t id = next_id;
		const char *tpl = templates[r1 % 8];
		unsigned host = (unsigned)(r1 >> 8) % 64;
		char *p = rec;

		next_id = splitmix64(&s);
		if (pos > strlen(head))
			*p++ = ',';
		*p++ = '"';
		p = put_id(p, wf, id);
		p = put_s(p, "\":{\"id\":\"");
		p = put_id(p, wf, id);
		p = put_s(p, "\",\"name\":\"");
		p = put_s(p, wf);
		p = put_s(p, "[0].");
		p = put_s(p, tpl);
		*p++ = '(';
		p = put_u(p, step / 16);
		*p++ = ':';
		p = put_u(p, step % 16);
		p = put_s(p, ")\",\"displayName\":\"");
		p = put_s(p, tpl);
		*p++ = '(';
		p = put_u(p, step / 16);
		*p++ = ':';
		p = put_u(p, step % 16);
		p = put_s(p, ")\",\"type\":\"Pod\",\"templateName\":\"");
		p = put_s(p, tpl);
		p = put_s(p, "\",\"templateScope\":\"local/");
		p = put_s(p, wf);
		p = put_s(p, "\",\"phase\":\"");
		p = put_s(p, (r1 >> 16) % 20 == 0 ? "Failed" : "Succeeded");
		p = put_s(p, "\",\"boundaryID\":\"");
		p = put_s(p, wf);
		p = put_s(p, "\",\"startedAt\":\"");
		time_add(&t, (unsigned)((r1 >> 24) % 7));
		p = put_time(p, &t);
		p = put_s(p, "\",\"finishedAt\":\"");
		{
			fx_time f = t;
			time_add(&f, 5 + (unsigned)((r1 >> 32) % 300));
			p = put_time(p, &f);
		}
		p = put_s(p, "\",\"progress\":\"1/1\",\"resourcesDuration\":{\"cpu\":");
		p = put_u(p, 1 + (r2 % 400));
		p = put_s(p, ",\"memory\":");
		p = put_u(p, 1 + ((r2 >> 12) % 4000));
		p = put_s(p, "},\"outputs\":{\"parameters\":[{\"name\":\"result\",\"value\":\"");
		p = put_hex(p, r2 >> 24, 8);
		p = put_s(p, "\"},{\"name\":\"shard\",\"value\":\"");
		p = put_u(p, step % 256);
		p = put_s(p, "\"}],\"exitCode\":\"");
		*p++ = (r1 >> 16) % 20 == 0 ? '1' : '0';
		p = put_s(p, "\"},\"children\":[\"");
		p = put_id(p, wf, next_id);
		p = put_s(p, "\"],\"hostNodeName\":\"ip-10-0-");
		p = put_u(p, (host * 37u) % 16);
		*p++ = '-';
		p = put_u(p, (host * 101u + 7) % 256);
		p = put_s(p, ".ec2.internal\"}");
		step++;

		size_t n = (size_t)(p - rec);
		if (n > len - 2 - pos)
			break;
		memcpy(buf + pos, rec, n);
		pos += n;
	}
	memset(buf + pos, ' ', len - 2 - pos);
	buf[len - 2] = '}';
	buf[len - 1] = '}';
}

int fx_count_objects(kvs_backend *b, const char *selector, size_t *out)
{
	char *token = NULL;
	int rc = 0;

	*out = 0;
	do {
		kvs_object_list *l = NULL;
		rc = b->ops->list(b, &l, selector, 0, token, KVS_LIST_METADATA_ONLY);
		free(token);
		token = NULL;
		if (rc < 0)
			break;
		*out += l->count;
		token = l->next ? strdup(l->next) : NULL;
		kvs_object_list_free(l);
	} while (token);
	return rc;
}
