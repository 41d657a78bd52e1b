/*
 * kube/http.h — the HTTP client of the Kubernetes backend (private).
 *
 * One kvs__http per backend: libcurl easy and multi handles from pools (the
 * multi handles keep the warm connections), one shared DNS/TLS-session cache
 * (CURLSH with locks) for every thread,
 * HTTP/2 over TLS when the server offers it and libcurl is recent enough
 * (kvs__http_uses_h2()), a client-side token-bucket rate
 * limiter, and retries of transient failures (429 honouring Retry-After;
 * 500/502/503/504 and broken connections with capped exponential backoff and
 * full jitter). Requests of one kvs__http_run() go through one curl multi
 * handle: up to `concurrency` in flight, multiplexed on one connection with
 * HTTP/2, else on parallel HTTP/1.1 connections.
 */
#ifndef KVS_KUBE_HTTP_H
#define KVS_KUBE_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "kube/kubeconfig.h"

typedef struct kvs__http kvs__http;

typedef struct kvs__http_config {
	const kvs__kubeconf *kc;   /**< where and how (borrowed during kvs__http_new) */
	const char *user_agent;
	double qps;                /**< <= 0: no client-side limit */
	unsigned burst;
	unsigned timeout_ms;       /**< whole request */
	unsigned retries;          /**< retries of transient failures */
} kvs__http_config;

/** @return 0, KVS_ECONFIG (unreadable token file...), KVS_ENOMEM */
int kvs__http_new(kvs__http **out, const kvs__http_config *cfg);
void kvs__http_free(kvs__http *h);

/** What credentials requests carry, for a 401's message ("client certificate CN=alice"). */
const char *kvs__http_auth(const kvs__http *h);

/** The base URL requests go to (for messages). */
const char *kvs__http_server(const kvs__http *h);

/** 1 when the configuration turned TLS certificate verification off. */
int kvs__http_insecure(const kvs__http *h);

/** One request of kvs__http_run(). */
typedef struct kvs__http_req {
	/* in */
	const char *method;        /**< "GET", "POST", "PUT", "PATCH", "DELETE" */
	const char *path;          /**< "/api/v1/...", query included, already escaped */
	const char *content_type;  /**< of the body (NULL: none) */
	const char *accept;        /**< NULL: application/json */
	const char *body;
	size_t body_len;
	size_t max_resp;           /**< response body cap (over it: KVS_EIO) */
	/**
	 * Called once when the request is final, with its outputs set (NULL:
	 * not called). It runs on the calling thread between the transfers of
	 * the others, right after the next ones have been sent, so decoding a
	 * response overlaps the server's work on the rest.
	 */
	void (*done)(struct kvs__http_req *r, void *ctx);
	void *done_ctx;
	/* out */
	int rc;                    /**< 0: an HTTP response is in status/resp; < 0: failed (detail in err) */
	long status;
	char *resp;                /**< malloc'd, NUL-terminated; free with free() */
	size_t resp_len;
	unsigned attempts;
	long retry_after_s;        /**< Retry-After of the final response (0: none) */
	int resent_after_loss;     /**< re-sent after an attempt whose outcome is unknown */
	char resp_type[128];       /**< Content-Type of the response ("" none; truncated) */
	char err[384];
} kvs__http_req;

/**
 * Run `n` requests, up to `concurrency` at once, each retried on its own.
 * A final 4xx/5xx is a response (rc 0), left to the caller to map. Returns 0
 * (see each req->rc) or KVS_ENOMEM for a failure of the whole run. Fills the
 * calling thread's error detail from the last failed request.
 */
int kvs__http_run(kvs__http *h, kvs__http_req *reqs, size_t n, unsigned concurrency);

/** Clear a request's outputs (frees resp) so it can be reused. */
void kvs__http_req_reset(kvs__http_req *r);

/**
 * Server time: the Date header of the latest response plus the monotonic
 * time elapsed since. 1 and *ms when known, 0 when no response was seen yet.
 */
int kvs__http_now(kvs__http *h, int64_t *ms);

/** A streaming GET split into lines (a watch). One thread at a time. */
typedef struct kvs__http_stream kvs__http_stream;

/**
 * Open a stream and wait (up to the request timeout) for the response
 * headers. A status other than 200 is returned in *status with the (capped)
 * body in *errbody (malloc'd) and no stream. `accept` NULL: application/json. Transport failures: KVS_EIO or
 * KVS_ETIMEOUT with the detail set.
 */
int kvs__http_stream_open(kvs__http_stream **out, kvs__http *h, const char *path,
                          const char *accept, size_t max_line, long *status, char **errbody,
                          size_t *errlen);
/**
 * Next line (without its newline; *line malloc'd). KVS_ETIMEOUT when none
 * came within timeout_ms (-1 = forever), KVS_EIO when the stream ended or
 * broke, or a line went over max_line.
 */
int kvs__http_stream_next(kvs__http_stream *s, char **line, size_t *len, int timeout_ms);
void kvs__http_stream_close(kvs__http_stream *s);

/**
 * The framing of a watch body (the stream's write callback feeds every
 * piece curl delivers, split anywhere): lines end at LF, one CR before it
 * is dropped, blank lines are skipped, a line over max_line bytes is an
 * error. Queued lines come out in order, each malloc'd and NUL-terminated.
 * Exposed for fuzz/watch_stream_fuzzer.c.
 */
struct kvs__line {
	char *p;
	size_t n;
};
typedef struct kvs__lines {
	char *part;                /**< the line being received */
	size_t plen, pcap, max_line;
	struct kvs__line *q;       /**< ring of received lines, qcap entries */
	size_t qhead, qn, qcap;
} kvs__lines;

void kvs__lines_init(kvs__lines *L, size_t max_line);
/** Feed n bytes: 0, KVS_EIO (a line over max_line), KVS_ENOMEM. After an
 *  error the framer is unusable until cleared. */
int kvs__lines_feed(kvs__lines *L, const char *p, size_t n);
/** The next complete line (*line malloc'd, yours): 1, or 0 when none. */
int kvs__lines_pop(kvs__lines *L, char **line, size_t *len);
/** Free everything queued and the partial line; ready for reuse. */
void kvs__lines_clear(kvs__lines *L);

/**
 * 1 when transfers ask for HTTP/2 over TLS (libcurl new enough, see
 * H2_MIN_CURL in kube_http.c), 0 when they speak HTTP/1.1. For tests.
 */
int kvs__http_uses_h2(void);

/** Monotonic milliseconds. */
int64_t kvs__kube_mono_ms(void);

#endif
