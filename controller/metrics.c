/*
 * metrics.c — the Prometheus endpoint (metrics.h) on libmicrohttpd's own
 * polling thread, and the runtime's metric families.
 */
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "kvsplit.h"
#include "kvsplit/backend.h"
#include "controller/metrics.h"

struct kvc_metrics {
	struct MHD_Daemon *d;
	kvc_metrics_collect fn;
	void *ctx;
	unsigned port;
};

void kvc_mbuf_printf(kvc_mbuf *b, const char *fmt, ...)
{
	va_list ap;
	if (b->err)
		return;
	for (;;) {
		size_t room = b->cap - b->len;
		va_start(ap, fmt);
		int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? room : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->err = KVS_EINVAL;
			return;
		}
		if (b->p && (size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t nc = b->cap ? b->cap * 2 : 4096;
		while (nc < b->len + (size_t)n + 1)
			nc *= 2;
		if (nc > KVC_MBUF_MAX) {
			b->err = KVS_ETOOBIG;
			return;
		}
		char *np = realloc(b->p, nc);
		if (!np) {
			b->err = KVS_ENOMEM;
			return;
		}
		b->p = np, b->cap = nc;
	}
}

void kvc_mbuf_family(kvc_mbuf *b, const char *name, const char *type, const char *help)
{
	kvc_mbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void kvc_mbuf_sample(kvc_mbuf *b, const char *name, const char *labels, double v)
{
	if (labels && *labels)
		kvc_mbuf_printf(b, "%s{%s} %.17g\n", name, labels, v);
	else
		kvc_mbuf_printf(b, "%s %.17g\n", name, v);
}

static void one(kvc_mbuf *b, const char *name, const char *type, const char *help, double v)
{
	kvc_mbuf_family(b, name, type, help);
	kvc_mbuf_sample(b, name, "", v);
}

void kvc_metrics_runtime(kvc_mbuf *b, kvc_member *m, kvc_queue *q, kvc_informer *const *infs,
                         size_t ninf, const kvc_runtime_counters *c)
{
	if (m) {
		kvc_member_stats s;
		kvc_member_stats_get(m, &s);
		one(b, "kvc_shards_owned", "gauge", "Virtual shards this member acts on.", s.held);
		one(b, "kvc_shards_target", "gauge", "Virtual shards the assignment gives this member.",
		    s.target);
		one(b, "kvc_vshards", "gauge", "Virtual shards in the group (V).",
		    kvc_member_vshards(m));
		one(b, "kvc_members", "gauge", "Members counted at the last tick.", s.members);
		kvc_mbuf_family(b, "kvc_handoffs_total", "counter",
		                "Shard movements of this member: acquired, released, withdrawn.");
		kvc_mbuf_sample(b, "kvc_handoffs_total", "direction=\"acquired\"", (double)s.acquired);
		kvc_mbuf_sample(b, "kvc_handoffs_total", "direction=\"released\"", (double)s.released);
		kvc_mbuf_sample(b, "kvc_handoffs_total", "direction=\"withdrawn\"", (double)s.withdrawn);
		one(b, "kvc_lease_renewals_total", "counter", "Successful Lease writes.",
		    (double)s.renewals);
		one(b, "kvc_lease_renew_failures_total", "counter", "Failed Lease writes.",
		    (double)s.renew_failures);
		one(b, "kvc_lease_list_failures_total", "counter", "Failed Lease lists.",
		    (double)s.list_failures);
		one(b, "kvc_lease_conflicts_total", "counter", "Our Lease written by someone else.",
		    (double)s.conflicts);
		one(b, "kvc_fences_total", "counter", "Times the member stopped acting (fenced itself).",
		    (double)s.fences);
		one(b, "kvc_group_load_max", "gauge", "Largest member's shard count in the assignment.",
		    s.max_load);
		one(b, "kvc_group_load_mean", "gauge", "Mean shards per member (V / members).",
		    s.mean_load);
		one(b, "kvc_group_load_imbalance", "gauge", "Max/mean load across the group.",
		    s.mean_load > 0 ? s.max_load / s.mean_load : 0);
	}
	if (q) {
		kvc_queue_stats s;
		kvc_queue_stats_get(q, &s);
		one(b, "kvc_queue_depth", "gauge", "Items ready in the work queue.", (double)s.depth);
		one(b, "kvc_queue_waiting", "gauge", "Items delayed (backoff, add_after).",
		    (double)s.waiting);
		one(b, "kvc_queue_processing", "gauge", "Items being processed.", (double)s.processing);
		one(b, "kvc_queue_adds_total", "counter", "Items added.", (double)s.adds);
		one(b, "kvc_queue_retries_total", "counter", "Rate-limited re-adds.", (double)s.retries);
		kvc_mbuf_family(b, "kvc_queue_latency_seconds", "summary",
		                "Time from add to get of work queue items.");
		kvc_mbuf_sample(b, "kvc_queue_latency_seconds_sum", "", (double)s.latency_sum_ns / 1e9);
		kvc_mbuf_sample(b, "kvc_queue_latency_seconds_count", "", (double)s.gets);
		one(b, "kvc_queue_latency_max_seconds", "gauge", "Longest add-to-get wait seen.",
		    (double)s.latency_max_ns / 1e9);
	}
	if (ninf) {
		kvc_informer_stats s[8];
		size_t n = ninf < 8 ? ninf : 8;
		char lab[64];
		for (size_t i = 0; i < n; i++)
			kvc_informer_stats_get(infs[i], &s[i]);
		kvc_mbuf_family(b, "kvc_objects_cached", "gauge", "Objects in the informer's cache.");
		for (size_t i = 0; i < n; i++) {
			snprintf(lab, sizeof(lab), "informer=\"%zu\"", i);
			kvc_mbuf_sample(b, "kvc_objects_cached", lab, (double)s[i].objects);
		}
		kvc_mbuf_family(b, "kvc_informer_cache_bytes", "gauge",
		                "Estimated bytes of the informer's cache.");
		for (size_t i = 0; i < n; i++) {
			snprintf(lab, sizeof(lab), "informer=\"%zu\"", i);
			kvc_mbuf_sample(b, "kvc_informer_cache_bytes", lab, (double)s[i].bytes);
		}
		kvc_mbuf_family(b, "kvc_informer_events_total", "counter",
		                "Cache changes: added, updated, deleted, left (handed off).");
		for (size_t i = 0; i < n; i++) {
			static const char *const t[] = { "added", "updated", "deleted", "left" };
			uint64_t v[] = { s[i].added, s[i].updated, s[i].deleted, s[i].left };
			for (size_t j = 0; j < 4; j++) {
				snprintf(lab, sizeof(lab), "informer=\"%zu\",type=\"%s\"", i, t[j]);
				kvc_mbuf_sample(b, "kvc_informer_events_total", lab, (double)v[j]);
			}
		}
		kvc_mbuf_family(b, "kvc_informer_rebuilds_total", "counter",
		                "Selector changes applied (shard set changed).");
		for (size_t i = 0; i < n; i++) {
			snprintf(lab, sizeof(lab), "informer=\"%zu\"", i);
			kvc_mbuf_sample(b, "kvc_informer_rebuilds_total", lab, (double)s[i].rebuilds);
		}
	}
	if (c) {
		one(b, "kvc_reconciles_total", "counter", "Reconciles run.", (double)c->reconciles);
		one(b, "kvc_reconcile_errors_total", "counter", "Reconciles that failed.",
		    (double)c->reconcile_errors);
		one(b, "kvc_kvsplit_bytes_written_total", "counter",
		    "Stored bytes written through libkvsplit.", (double)c->kvs_bytes_written);
		one(b, "kvc_kvsplit_bytes_read_total", "counter", "Bytes read through libkvsplit.",
		    (double)c->kvs_bytes_read);
	}
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
	kvc_metrics *m = cls;
	struct MHD_Response *r;
	enum MHD_Result ret;
	unsigned code = MHD_HTTP_OK;

	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		static char nope[] = "method not allowed\n";
		r = MHD_create_response_from_buffer(sizeof(nope) - 1, nope, MHD_RESPMEM_PERSISTENT);
		code = MHD_HTTP_METHOD_NOT_ALLOWED;
	} else if (strcmp(url, "/metrics") != 0) {
		static char nf[] = "not found: try /metrics\n";
		r = MHD_create_response_from_buffer(sizeof(nf) - 1, nf, MHD_RESPMEM_PERSISTENT);
		code = MHD_HTTP_NOT_FOUND;
	} else {
		kvc_mbuf b = { NULL, 0, 0, 0 };
		if (m->fn(m->ctx, &b) != 0 || b.err) {
			free(b.p);
			static char err[] = "collect failed\n";
			r = MHD_create_response_from_buffer(sizeof(err) - 1, err, MHD_RESPMEM_PERSISTENT);
			code = MHD_HTTP_INTERNAL_SERVER_ERROR;
		} else {
			r = MHD_create_response_from_buffer(b.len, b.p ? b.p : (char *)"",
			                                    b.p ? MHD_RESPMEM_MUST_FREE
			                                        : MHD_RESPMEM_PERSISTENT);
			if (r)
				MHD_add_response_header(r, "Content-Type",
				                        "text/plain; version=0.0.4; charset=utf-8");
			else
				free(b.p);
		}
	}
	if (!r)
		return MHD_NO;
	ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

int kvc_metrics_start(kvc_metrics **out, const char *addr, kvc_metrics_collect fn, void *ctx)
{
	char host[256];
	const char *colon = addr ? strrchr(addr, ':') : NULL;
	struct addrinfo hints, *ai = NULL;
	kvc_metrics *m;

	*out = NULL;
	if (!fn || !colon || (size_t)(colon - addr) >= sizeof(host) || !colon[1])
		return kvs_error_set(KVS_EINVAL, "metrics: address \"%s\" is not HOST:PORT",
		                     addr ? addr : "");
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if (getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &ai) != 0 || !ai)
		return kvs_error_set(KVS_EINVAL, "metrics: cannot resolve \"%s\"", addr);
	if (!(m = calloc(1, sizeof(*m)))) {
		freeaddrinfo(ai);
		return kvs_error_set(KVS_ENOMEM, "metrics: out of memory");
	}
	m->fn = fn;
	m->ctx = ctx;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD;
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	m->d = MHD_start_daemon(flags, 0, NULL, NULL, answer, m, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
	                        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
	                        MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_END);
	freeaddrinfo(ai);
	if (!m->d) {
		free(m);
		return kvs_error_set(KVS_EIO, "metrics: cannot listen on %s", addr);
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_BIND_PORT);
	m->port = di ? di->port : 0;
	*out = m;
	return 0;
}

unsigned kvc_metrics_port(const kvc_metrics *m)
{
	return m ? m->port : 0;
}

void kvc_metrics_stop(kvc_metrics *m)
{
	if (!m)
		return;
	MHD_stop_daemon(m->d);
	free(m);
}
