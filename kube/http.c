/*
 * kube/http.c — libcurl client of the Kubernetes backend.
 *
 * Design:
 *  - one CURLSH per backend shares the DNS cache and TLS sessions between
 *    every thread (a lock per data kind). Connections live in the connection
 *    cache of each multi handle, and multi handles come from a pool, so a
 *    request finds a warm connection (and HTTP/2 streams of one batch share
 *    one connection). The connection cache itself is NOT put in the share:
 *    with libcurl 7.88, transfers of several threads' multi handles sharing
 *    it were seen to stall forever (kubefault suite), and libcurl only
 *    multiplexes within one multi handle anyway;
 *  - HTTP/2 (multiplexed streams of one connection per multi handle) only
 *    with libcurl >= 8.6.0: see H2_MIN_CURL; else HTTP/1.1;
 *  - easy handles come from a pool too and are reset, not recreated;
 *  - every request goes through a multi handle (a lone GET is a batch of
 *    one), so there is one code path for retries: a transfer that fails
 *    transiently goes back to the waiting set with a "not before" time and
 *    is re-added to the multi when that time comes, while the other
 *    transfers keep running;
 *  - the rate limiter is a token bucket (qps, burst) like client-go's: each
 *    attempt reserves a token and waits until it is its turn.
 *
 * Secrets (bearer token, password, client key) go only into curl options and
 * request headers; no message built here ever contains them.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <curl/curl.h>

#include "kvsplit.h"
#include "kvsplit/backend.h"
#include "kube/cert.h"
#include "kube/exec.h"
#include "kube/http.h"

#define POOL_MAX 32
#define BACKOFF_BASE_MS 100
#define BACKOFF_CAP_MS 5000
#define RETRY_AFTER_CAP_MS 30000
#define CONNECT_RETRIES 2      /* connection refused: retried only this often */
#define TOKEN_MAX (64u * 1024u)
#define ERRBODY_MAX (1024u * 1024u)
#define STREAM_QUEUE 64        /* initial line queue of a stream; it grows */

struct kvs__http {
	char *base;
	struct curl_slist *connect_to;
	char *ca_file;
	uint8_t *ca_data;
	size_t ca_len;
	int insecure;
	char *cert_file;
	uint8_t *cert_data;
	size_t cert_len;
	char *key_file;
	uint8_t *key_data;
	size_t key_len;
	char *username;
	char *password;
	char *ua;
	unsigned timeout_ms;
	unsigned retries;

	pthread_mutex_t tok_lock;
	char *token;
	char *token_file;
	struct stat tok_st;
	/* exec credential plugin (under tok_lock): the last credential it gave,
	 * and a generation bumped each time it ran, so a 401 re-runs it only
	 * when the credential that was refused is still the current one */
	kvs__exec_conf *exec;
	char *exec_cluster;
	kvs__exec_cred cred;
	int cred_ok;
	uint64_t cred_gen;
	char *auth_desc;       /* what credentials requests carry (messages) */
	char *proxy;           /* CURLOPT_PROXY: "" = none, whatever the environment says */
	char *noproxy;         /* CURLOPT_NOPROXY */

	pthread_mutex_t rl_lock;
	double qps, burst, tokens;
	int64_t rl_last_us;

	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];

	pthread_mutex_t pool_lock;
	CURL *easy[POOL_MAX];
	int neasy;
	CURLM *multi[POOL_MAX];
	int nmulti;

	pthread_mutex_t date_lock;
	int64_t date_ms, date_mono;
};

/* ------------------------------------------------------------------------ */
/* small helpers                                                            */

int64_t kvs__kube_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts;

	if (ms <= 0)
		return;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* xorshift64*, one state per thread: only for jitter */
static uint64_t jitter_rand(void)
{
	static _Thread_local uint64_t s;

	if (s == 0)
		s = (uint64_t)mono_us() ^ ((uint64_t)(uintptr_t)&s << 16) ^ 0x9E3779B97F4A7C15ull;
	s ^= s >> 12;
	s ^= s << 25;
	s ^= s >> 27;
	return s * 2685821657736338717ull;
}

/* Full jitter: uniform in [0, min(cap, base * 2^attempt)). attempt >= 1. */
static int64_t backoff_ms(unsigned attempt)
{
	int64_t ceil_ms = BACKOFF_BASE_MS;

	for (unsigned i = 1; i < attempt && ceil_ms < BACKOFF_CAP_MS; i++)
		ceil_ms *= 2;
	if (ceil_ms > BACKOFF_CAP_MS)
		ceil_ms = BACKOFF_CAP_MS;
	return (int64_t)(jitter_rand() % (uint64_t)ceil_ms);
}

/*
 * HTTP/2 only with a libcurl recent enough. With libcurl 7.88.1 (Debian 12)
 * behind an h2 front (nghttpx, tests/test_kube.c), a batch's multiplexed
 * GETs of ~1 MiB segments now and then left a stream's last few hundred
 * bytes inside libcurl: the server had sent them, both socket queues were
 * empty, and the transfer sat until CURLOPT_TIMEOUT_MS (30 s, then a retry;
 * a 64 MiB get took 30-60 s instead of 0.6 s in about one run out of four).
 * Below H2_MIN_CURL every transfer speaks HTTP/1.1: a batch runs on up to
 * `concurrency` parallel keep-alive connections of its multi handle. 8.6.0
 * comes after the HTTP/2 rework and flow-control fixes of 8.1-8.5; it is a
 * conservative choice, not a version seen working here.
 */
#define H2_MIN_CURL 0x080600

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static long http_version = CURL_HTTP_VERSION_1_1;

static void curl_global(void)
{
	const curl_version_info_data *vi;

	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
	vi = curl_version_info(CURLVERSION_NOW);
	if (vi && vi->version_num >= H2_MIN_CURL && (vi->features & CURL_VERSION_HTTP2))
		http_version = CURL_HTTP_VERSION_2TLS;
}

int kvs__http_uses_h2(void)
{
	pthread_once(&curl_once, curl_global);
	return http_version == CURL_HTTP_VERSION_2TLS;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n)
{
	uint8_t *r;

	if (!p)
		return NULL;
	if ((r = malloc(n ? n : 1)) != NULL)
		memcpy(r, p, n);
	return r;
}

/* ------------------------------------------------------------------------ */
/* share locks, pools                                                       */

static void share_lock(CURL *c, curl_lock_data d, curl_lock_access a, void *u)
{
	kvs__http *h = u;

	(void)c;
	(void)a;
	if ((int)d >= 0 && d < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&h->share_locks[d]);
}

static void share_unlock(CURL *c, curl_lock_data d, void *u)
{
	kvs__http *h = u;

	(void)c;
	if ((int)d >= 0 && d < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&h->share_locks[d]);
}

static CURL *easy_get(kvs__http *h)
{
	CURL *e = NULL;

	pthread_mutex_lock(&h->pool_lock);
	if (h->neasy > 0)
		e = h->easy[--h->neasy];
	pthread_mutex_unlock(&h->pool_lock);
	if (e)
		curl_easy_reset(e);
	else
		e = curl_easy_init();
	return e;
}

static void easy_put(kvs__http *h, CURL *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&h->pool_lock);
	if (h->neasy < POOL_MAX) {
		h->easy[h->neasy++] = e;
		e = NULL;
	}
	pthread_mutex_unlock(&h->pool_lock);
	curl_easy_cleanup(e);
}

static CURLM *multi_get(kvs__http *h)
{
	CURLM *m = NULL;

	pthread_mutex_lock(&h->pool_lock);
	if (h->nmulti > 0)
		m = h->multi[--h->nmulti];
	pthread_mutex_unlock(&h->pool_lock);
	if (!m && (m = curl_multi_init()) != NULL)
		curl_multi_setopt(m, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	return m;
}

static void multi_put(kvs__http *h, CURLM *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&h->pool_lock);
	if (h->nmulti < POOL_MAX) {
		h->multi[h->nmulti++] = m;
		m = NULL;
	}
	pthread_mutex_unlock(&h->pool_lock);
	curl_multi_cleanup(m);
}

/* ------------------------------------------------------------------------ */
/* token                                                                    */

/* Re-read the token file when it changed (rotation of a projected service
 * account token) or when `force` (after a 401). Under tok_lock. */
static int exec_refresh_locked(kvs__http *h, int force)
{
	kvs__exec_cred c;
	struct timespec now;
	int rc;

	clock_gettime(CLOCK_REALTIME, &now);
	if (!force && h->cred_ok &&
	    (h->cred.expiry_ms == 0 ||
	     (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 < h->cred.expiry_ms))
		return 0;
	if ((rc = kvs__exec_run(&c, h->exec, h->exec_cluster, h->timeout_ms)) < 0)
		return rc;
	if (c.cert) {
		char *desc = NULL, w[300];

		snprintf(w, sizeof(w), "exec credential plugin \"%s\"", h->exec->command);
		rc = kvs__cert_check(&desc, c.cert, c.cert_len, NULL, c.key, c.key_len, NULL, w);
		free(desc);
		if (rc < 0) {
			kvs__exec_cred_clear(&c);
			return rc;
		}
	}
	kvs__exec_cred_clear(&h->cred);
	h->cred = c;
	h->cred_ok = 1;
	h->cred_gen++;
	return 0;
}

static int token_refresh_locked(kvs__http *h, int force)
{
	struct stat st;
	char *t = NULL;
	size_t n;
	int rc;

	if (h->exec)
		return exec_refresh_locked(h, force);
	if (!h->token_file)
		return 0;
	if (stat(h->token_file, &st) != 0)
		return h->token ? 0 /* keep the last one; the server will say */
		                : kvs_error_set(KVS_ECONFIG, "token file %s: %s", h->token_file,
		                                strerror(errno));
	if (!force && h->token && st.st_mtim.tv_sec == h->tok_st.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == h->tok_st.st_mtim.tv_nsec && st.st_ino == h->tok_st.st_ino &&
	    st.st_size == h->tok_st.st_size)
		return 0;
	rc = kvs__read_small_file(&t, &n, h->token_file, TOKEN_MAX);
	if (rc < 0)
		return h->token ? 0
		                : kvs_error_set(KVS_ECONFIG, "token file %s: %s", h->token_file,
		                                strerror(-rc));
	while (n && (t[n - 1] == '\n' || t[n - 1] == '\r' || t[n - 1] == ' ' || t[n - 1] == '\t'))
		t[--n] = '\0';
	if (strchr(t, '\n') || strchr(t, '\r')) {
		explicit_bzero(t, n);
		free(t);
		return kvs_error_set(KVS_ECONFIG, "token file %s: token contains a line break",
		                     h->token_file);
	}
	if (h->token) {
		explicit_bzero(h->token, strlen(h->token));
		free(h->token);
	}
	h->token = t;
	h->tok_st = st;
	return 0;
}

/* "Authorization: Bearer ..." for one transfer, or NULL when no token; an
 * exec plugin's client certificate goes on the handle (copied: the next run
 * frees the credential while this transfer may still need it). *gen gets
 * the credential generation used. */
static struct curl_slist *auth_header(kvs__http *h, CURL *e, struct curl_slist *l, int *rc,
                                      uint64_t *gen)
{
	char *line = NULL;
	struct curl_slist *nl;
	const char *tok;

	*rc = 0;
	pthread_mutex_lock(&h->tok_lock);
	*rc = token_refresh_locked(h, 0);
	*gen = h->cred_gen;
	tok = h->exec ? h->cred.token : h->token;
	if (*rc == 0 && h->exec && h->cred.cert) {
		struct curl_blob c = { h->cred.cert, h->cred.cert_len, CURL_BLOB_COPY };
		struct curl_blob k = { h->cred.key, h->cred.key_len, CURL_BLOB_COPY };
		curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &c);
		curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
		curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &k);
		curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
	}
	if (*rc == 0 && tok && tok[0] && asprintf(&line, "Authorization: Bearer %s", tok) < 0)
		line = NULL;
	pthread_mutex_unlock(&h->tok_lock);
	if (*rc < 0 || !line)
		return l;
	nl = curl_slist_append(l, line);
	explicit_bzero(line, strlen(line));
	free(line);
	if (!nl)
		*rc = kvs_error_set(KVS_ENOMEM, "out of memory");
	return nl ? nl : l;
}

/* ------------------------------------------------------------------------ */
/* rate limiter                                                             */

/* Reserve one token; returns how many ms to wait before using it. */
static int64_t rl_reserve(kvs__http *h)
{
	int64_t now, wait = 0;

	if (h->qps <= 0)
		return 0;
	pthread_mutex_lock(&h->rl_lock);
	now = mono_us();
	h->tokens += (double)(now - h->rl_last_us) / 1e6 * h->qps;
	if (h->tokens > h->burst)
		h->tokens = h->burst;
	h->rl_last_us = now;
	h->tokens -= 1.0;
	if (h->tokens < 0)
		wait = (int64_t)(-h->tokens / h->qps * 1000.0) + 1;
	pthread_mutex_unlock(&h->rl_lock);
	return wait;
}

/* ------------------------------------------------------------------------ */
/* create / free                                                            */

void kvs__http_free(kvs__http *h)
{
	if (!h)
		return;
	for (int i = 0; i < h->neasy; i++)
		curl_easy_cleanup(h->easy[i]);
	for (int i = 0; i < h->nmulti; i++)
		curl_multi_cleanup(h->multi[i]);
	if (h->share)
		curl_share_cleanup(h->share);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&h->share_locks[i]);
	pthread_mutex_destroy(&h->pool_lock);
	pthread_mutex_destroy(&h->tok_lock);
	pthread_mutex_destroy(&h->rl_lock);
	pthread_mutex_destroy(&h->date_lock);
	curl_slist_free_all(h->connect_to);
	free(h->base);
	free(h->ca_file);
	free(h->ca_data);
	free(h->cert_file);
	free(h->cert_data);
	free(h->key_file);
	if (h->key_data)
		explicit_bzero(h->key_data, h->key_len);
	free(h->key_data);
	free(h->username);
	if (h->password)
		explicit_bzero(h->password, strlen(h->password));
	free(h->password);
	if (h->token)
		explicit_bzero(h->token, strlen(h->token));
	free(h->token);
	free(h->token_file);
	kvs__exec_conf_free(h->exec);
	free(h->exec_cluster);
	kvs__exec_cred_clear(&h->cred);
	free(h->proxy);
	free(h->noproxy);
	free(h->auth_desc);
	free(h->ua);
	free(h);
}

/* tls-server-name: talk to the configured host but name (SNI + certificate
 * check) `name`: URL host := name, CURLOPT_CONNECT_TO name:port → host:port. */
static int set_tls_server_name(kvs__http *h, const char *server, const char *name)
{
	const char *p = strstr(server, "://"), *hs, *he, *port = NULL, *rest;
	char *url = NULL, *ct = NULL;
	int hlen;

	if (!p || strncmp(server, "https://", 8) != 0)
		return 0; /* only meaningful for TLS */
	hs = p + 3;
	if (*hs == '[') {
		he = strchr(hs, ']');
		if (!he)
			return kvs_error_set(KVS_ECONFIG, "server URL %s is malformed", server);
		he++;
	} else {
		he = hs + strcspn(hs, ":/");
	}
	rest = he;
	if (*he == ':') {
		port = he + 1;
		rest = port + strcspn(port, "/");
	}
	hlen = (int)(he - hs);
	int plen = port ? (int)(rest - port) : 3;
	const char *pp = port ? port : "443";
	if (asprintf(&url, "https://%s:%.*s%s", name, plen, pp, rest) < 0)
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	if (asprintf(&ct, "%s:%.*s:%.*s:%.*s", name, plen, pp, hlen, hs, plen, pp) < 0) {
		free(url);
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	}
	h->connect_to = curl_slist_append(NULL, ct);
	free(ct);
	if (!h->connect_to) {
		free(url);
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	}
	free(h->base);
	h->base = url;
	return 0;
}

/* The plugin's configuration, and what KUBERNETES_EXEC_INFO says about the
 * cluster (the CA as bytes, read from the file when the kubeconfig names one). */
static int exec_setup(kvs__http *h, const kvs__kubeconf *kc)
{
	uint8_t *ca = kc->ca_data;
	size_t ca_len = kc->ca_len;
	char *file = NULL;
	int rc;

	if (!(h->exec = kvs__exec_conf_dup(kc->exec)))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	if (!kc->exec->provide_cluster_info)
		return 0;
	if (!ca && kc->ca_file) {
		if ((rc = kvs__read_small_file(&file, &ca_len, kc->ca_file, 4u * 1024u * 1024u)) < 0)
			return kvs_error_set(KVS_ECONFIG, "certificate-authority %s: %s", kc->ca_file,
			                     strerror(-rc));
		ca = (uint8_t *)file;
	}
	h->exec_cluster = kvs__exec_cluster_json(kc->server, kc->tls_server_name, kc->insecure, ca,
	                                         ca_len, kc->proxy_url);
	free(file);
	return h->exec_cluster ? 0 : kvs_error_set(KVS_ENOMEM, "out of memory");
}

/* Check a kubeconfig client certificate now, and say what requests carry. */
static int auth_setup(kvs__http *h, const kvs__kubeconf *kc)
{
	const char *src = kc->source ? kc->source : "kubeconfig";
	int rc;

	if (kc->exec) {
		if (asprintf(&h->auth_desc, "credentials of exec credential plugin \"%s\"",
		             kc->exec->command) < 0)
			h->auth_desc = NULL;
	} else if (kc->cert_file || kc->cert_data) {
		if ((rc = kvs__cert_check(&h->auth_desc, kc->cert_data, kc->cert_len, kc->cert_file,
		                          kc->key_data, kc->key_len, kc->key_file, src)) < 0)
			return rc;
	} else if (kc->token_file) {
		if (asprintf(&h->auth_desc, "bearer token from %s", kc->token_file) < 0)
			h->auth_desc = NULL;
	} else {
		h->auth_desc = strdup(kc->token ? "bearer token"
		                      : kc->username ? "basic authentication"
		                                     : "no credentials");
	}
	return h->auth_desc ? 0 : kvs_error_set(KVS_ENOMEM, "out of memory");
}

const char *kvs__http_auth(const kvs__http *h)
{
	return h->auth_desc ? h->auth_desc : "credentials";
}

/* The host of an http(s) URL (brackets of an IPv6 literal dropped, lower
 * case) and its port; 0, or -1 when it does not fit. */
static int url_host(const char *url, char *host, size_t cap, unsigned *port)
{
	const char *hs = strstr(url, "://"), *pe;
	size_t n;

	*port = strncmp(url, "https://", 8) == 0 ? 443 : 80;
	if (!hs)
		return -1;
	hs += 3;
	if (*hs == '[') {
		n = strcspn(hs + 1, "]");
		pe = hs + 1 + n + (hs[1 + n] == ']');
		hs++;
	} else {
		n = strcspn(hs, ":/");
		pe = hs + n;
	}
	if (n >= cap)
		return -1;
	for (size_t i = 0; i < n; i++)
		host[i] = (char)(hs[i] >= 'A' && hs[i] <= 'Z' ? hs[i] - 'A' + 'a' : hs[i]);
	host[n] = '\0';
	if (*pe == ':')
		*port = (unsigned)strtoul(pe + 1, NULL, 10);
	return 0;
}

static int host_is_loopback(const char *host)
{
	struct in_addr a4;

	if (strcmp(host, "localhost") == 0 || strcmp(host, "::1") == 0)
		return 1;
	return inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

/* Whether NO_PROXY names the host, by Go's rules (golang.org/x/net/http/
 * httpproxy): "*"; an IP or CIDR; a domain that matches itself and its
 * subdomains ("foo.com"), or only subdomains (".foo.com"); each with an
 * optional port. */
static int no_proxy_match(const char *list, const char *host, unsigned port)
{
	char buf[4096], *save = NULL;
	struct in_addr h4;
	int host_ip4 = inet_pton(AF_INET, host, &h4) == 1;

	snprintf(buf, sizeof(buf), "%s", list);
	for (char *e = strtok_r(buf, ",", &save); e; e = strtok_r(NULL, ",", &save)) {
		char *p, *slash;
		size_t n;

		while (*e == ' ' || *e == '\t')
			e++;
		n = strlen(e);
		while (n && (e[n - 1] == ' ' || e[n - 1] == '\t'))
			e[--n] = '\0';
		for (p = e; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		if (!*e)
			continue;
		if (strcmp(e, "*") == 0)
			return 1;
		if ((slash = strchr(e, '/')) != NULL) {
			struct in_addr net;
			int bits = atoi(slash + 1);
			*slash = '\0';
			if (host_ip4 && inet_pton(AF_INET, e, &net) == 1 && bits >= 0 && bits <= 32) {
				uint32_t mask = bits ? 0xffffffffu << (32 - bits) : 0;
				if ((ntohl(h4.s_addr) & mask) == (ntohl(net.s_addr) & mask))
					return 1;
			}
			continue;
		}
		/* a port: "host:port", "[v6]:port" */
		if (e[0] == '[') {
			char *rb = strchr(e, ']');
			if (!rb)
				continue;
			*rb = '\0';
			if (rb[1] == ':' && (unsigned)strtoul(rb + 2, NULL, 10) != port)
				continue;
			e++;
		} else if ((p = strrchr(e, ':')) != NULL && strchr(e, ':') == p) {
			*p = '\0';
			if ((unsigned)strtoul(p + 1, NULL, 10) != port)
				continue;
		}
		if (strcmp(e, host) == 0)
			return 1;
		if (e[0] == '.') {
			size_t hl = strlen(host), el = strlen(e);
			if (hl > el && strcmp(host + hl - el, e) == 0)
				return 1;
		} else {
			size_t hl = strlen(host), el = strlen(e);
			if (e[0] == '*' && e[1] == '.')
				e++, el--;
			if (hl > el && host[hl - el - 1] == '.' && strcmp(host + hl - el, e) == 0)
				return 1;
		}
	}
	return 0;
}

static const char *env_any(const char *a, const char *b)
{
	const char *v = getenv(a);

	if (!v || !*v)
		v = getenv(b);
	return v && *v ? v : NULL;
}

/*
 * Which proxy, the way client-go decides: the cluster's proxy-url when set
 * (then the environment is not consulted); else HTTPS_PROXY (https servers)
 * or HTTP_PROXY (http servers), upper case first, unless the server is
 * localhost or a loopback address or NO_PROXY names it. socks5:// in a
 * kubeconfig resolves names at the proxy, as Go's SOCKS5 dialer does:
 * libcurl calls that socks5h://.
 */
static int proxy_setup(kvs__http *h, const kvs__kubeconf *kc)
{
	const char *p = NULL, *np;
	const int https = strncmp(kc->server, "https://", 8) == 0;
	char host[256];
	unsigned port;

	if (kc->proxy_url) {
		p = kc->proxy_url;
	} else if (url_host(kc->server, host, sizeof(host), &port) == 0 && !host_is_loopback(host)) {
		p = https ? env_any("HTTPS_PROXY", "https_proxy") : env_any("HTTP_PROXY", "http_proxy");
		np = env_any("NO_PROXY", "no_proxy");
		if (np && no_proxy_match(np, host, port))
			p = NULL;
	}
	if (p && strncmp(p, "socks5://", 9) == 0) {
		if (asprintf(&h->proxy, "socks5h://%s", p + 9) < 0)
			h->proxy = NULL;
	} else {
		h->proxy = strdup(p ? p : "");
	}
	/* decided here, on the configured host: libcurl must not consult the
	 * environment again (nor match NO_PROXY against a tls-server-name) */
	h->noproxy = strdup("");
	return h->proxy && h->noproxy ? 0 : kvs_error_set(KVS_ENOMEM, "out of memory");
}

int kvs__http_new(kvs__http **out, const kvs__http_config *cfg)
{
	const kvs__kubeconf *kc = cfg->kc;
	kvs__http *h;
	int rc;

	*out = NULL;
	pthread_once(&curl_once, curl_global);
	if (curl_init_rc != CURLE_OK)
		return kvs_error_set(KVS_EIO, "libcurl failed to initialise: %s",
		                     curl_easy_strerror(curl_init_rc));
	if (!kc->server)
		return kvs_error_set(KVS_ECONFIG, "%s: no server URL", kc->source ? kc->source : "");
	if (!(h = calloc(1, sizeof(*h))))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	pthread_mutex_init(&h->pool_lock, NULL);
	pthread_mutex_init(&h->tok_lock, NULL);
	pthread_mutex_init(&h->rl_lock, NULL);
	pthread_mutex_init(&h->date_lock, NULL);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&h->share_locks[i], NULL);
	h->timeout_ms = cfg->timeout_ms;
	h->retries = cfg->retries;
	h->qps = cfg->qps;
	h->burst = cfg->burst ? cfg->burst : 1;
	h->tokens = h->burst;
	h->rl_last_us = mono_us();
	h->insecure = kc->insecure;
	h->ca_len = kc->ca_len;
	h->cert_len = kc->cert_len;
	h->key_len = kc->key_len;
	if (!(h->base = strdup(kc->server)) || !(h->ua = strdup(cfg->user_agent)) ||
	    (kc->ca_file && !(h->ca_file = strdup(kc->ca_file))) ||
	    (kc->ca_data && !(h->ca_data = dup_bytes(kc->ca_data, kc->ca_len))) ||
	    (kc->cert_file && !(h->cert_file = strdup(kc->cert_file))) ||
	    (kc->cert_data && !(h->cert_data = dup_bytes(kc->cert_data, kc->cert_len))) ||
	    (kc->key_file && !(h->key_file = strdup(kc->key_file))) ||
	    (kc->key_data && !(h->key_data = dup_bytes(kc->key_data, kc->key_len))) ||
	    (kc->username && !(h->username = strdup(kc->username))) ||
	    (kc->password && !(h->password = strdup(kc->password))) ||
	    (kc->token && !(h->token = dup_or_null(kc->token))) ||
	    (kc->token_file && !(h->token_file = strdup(kc->token_file)))) {
		rc = kvs_error_set(KVS_ENOMEM, "out of memory");
		goto fail;
	}
	if (h->token_file) {
		/* tokenFile wins over an inline token, as in client-go */
		if (h->token) {
			explicit_bzero(h->token, strlen(h->token));
			free(h->token);
			h->token = NULL;
		}
		if ((rc = token_refresh_locked(h, 1)) < 0)
			goto fail;
	}
	if (kc->exec && (rc = exec_setup(h, kc)) < 0)
		goto fail;
	if ((rc = auth_setup(h, kc)) < 0)
		goto fail;
	if ((rc = proxy_setup(h, kc)) < 0)
		goto fail;
	if (kc->tls_server_name && (rc = set_tls_server_name(h, kc->server, kc->tls_server_name)) < 0)
		goto fail;
	if (!(h->share = curl_share_init())) {
		rc = kvs_error_set(KVS_ENOMEM, "out of memory");
		goto fail;
	}
	curl_share_setopt(h->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(h->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(h->share, CURLSHOPT_USERDATA, h);
	curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	*out = h;
	return 0;
fail:
	kvs__http_free(h);
	return rc;
}

const char *kvs__http_server(const kvs__http *h)
{
	return h->base;
}

int kvs__http_insecure(const kvs__http *h)
{
	return h && h->insecure;
}

/* ------------------------------------------------------------------------ */
/* per-transfer setup                                                       */

struct xfer {
	kvs__http *h;
	kvs__http_req *req;
	CURL *easy;
	struct curl_slist *hdrs;
	char *buf;
	size_t len, cap, max;
	int too_big;
	int64_t date_ms;
	int64_t not_before;
	int reserved;          /* a rate-limiter token is held for the next start */
	int state;             /* 0 waiting, 1 running, 2 done */
	int done_pending;      /* final, its req->done not called yet */
	unsigned connect_fails;
	int reauthed;
	uint64_t cred_gen;     /* exec credential generation this attempt used */
	int lost;              /* an attempt failed after the request may have been sent */
	char errbuf[CURL_ERROR_SIZE];
};

static size_t on_body(char *p, size_t sz, size_t nm, void *u)
{
	struct xfer *x = u;
	size_t n = sz * nm;

	if (n > x->max - x->len || x->len + n + 1 > x->max + 1) {
		x->too_big = 1;
		return 0;
	}
	if (x->len + n + 1 > x->cap) {
		size_t nc = x->cap ? x->cap : 16384;
		char *nb;

		while (nc < x->len + n + 1)
			nc = nc > SIZE_MAX / 2 ? SIZE_MAX : nc * 2;
		if (nc > x->max + 1)
			nc = x->max + 1;
		if (!(nb = realloc(x->buf, nc)))
			return 0;
		x->buf = nb;
		x->cap = nc;
	}
	memcpy(x->buf + x->len, p, n);
	x->len += n;
	x->buf[x->len] = '\0';
	return n;
}

static int64_t header_date(const char *p, size_t n)
{
	char tmp[128];
	time_t t;

	if (n < 6 || n >= sizeof(tmp) || strncasecmp(p, "date:", 5) != 0)
		return -1;
	memcpy(tmp, p + 5, n - 5);
	tmp[n - 5] = '\0';
	t = curl_getdate(tmp, NULL);
	return t > 0 ? (int64_t)t * 1000 : -1;
}

/* Content-Length of a header line; -1 if it is not one or not a number. */
static int64_t header_length(const char *p, size_t n)
{
	char tmp[32], *end;
	unsigned long long v;
	size_t i = 15;

	if (n < 16 || strncasecmp(p, "content-length:", 15) != 0)
		return -1;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	if (n - i >= sizeof(tmp) || i == n || p[i] < '0' || p[i] > '9')
		return -1;
	memcpy(tmp, p + i, n - i);
	tmp[n - i] = '\0';
	errno = 0;
	v = strtoull(tmp, &end, 10);
	if (errno || (*end && *end != '\r' && *end != '\n' && *end != ' ') || v > INT64_MAX)
		return -1;
	return (int64_t)v;
}

/*
 * A declared length over the response cap ends the transfer before any of
 * the body is read (KVS_EIO, as when the bytes go over it); one under the
 * cap sizes the buffer once instead of doubling it from 16 KiB (a 1.4 MB
 * segment took seven reallocs, each a copy of what had come in).
 */
static size_t on_header(char *p, size_t sz, size_t nm, void *u)
{
	struct xfer *x = u;
	size_t n = sz * nm;
	int64_t d = header_date(p, n), cl = header_length(p, n);

	if (d > 0)
		x->date_ms = d;
	if (cl >= 0) {
		if ((uint64_t)cl > x->max) {
			x->too_big = 1;
			return 0;
		}
		if ((size_t)cl + 1 > x->cap) {
			char *nb = realloc(x->buf, (size_t)cl + 1);

			if (nb) {   /* else on_body grows it as it can */
				x->buf = nb;
				x->cap = (size_t)cl + 1;
				x->buf[x->len] = '\0';   /* a body of 0 bytes is "" */
			}
		}
	}
	return n;
}

static void note_date(kvs__http *h, int64_t date_ms)
{
	if (date_ms <= 0)
		return;
	pthread_mutex_lock(&h->date_lock);
	h->date_ms = date_ms;
	h->date_mono = kvs__kube_mono_ms();
	pthread_mutex_unlock(&h->date_lock);
}

int kvs__http_now(kvs__http *h, int64_t *ms)
{
	int known;

	pthread_mutex_lock(&h->date_lock);
	known = h->date_ms > 0;
	if (known)
		*ms = h->date_ms + (kvs__kube_mono_ms() - h->date_mono);
	pthread_mutex_unlock(&h->date_lock);
	return known;
}

/* Options common to every transfer: URL, TLS, auth, timeouts. */
static int setup_common(kvs__http *h, CURL *e, const char *path, struct curl_slist **hdrs,
                        const char *accept, const char *ctype, char *errbuf, uint64_t *gen)
{
	char *url = NULL, *line = NULL;
	int rc = 0;

	if (asprintf(&url, "%s%s", h->base, path) < 0)
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	curl_easy_setopt(e, CURLOPT_URL, url);
	free(url); /* curl copies strings */
	curl_easy_setopt(e, CURLOPT_SHARE, h->share);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, http_version);
	if (http_version == CURL_HTTP_VERSION_2TLS) /* wait to multiplex, not to open more */
		curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
	                 (long)(h->timeout_ms && h->timeout_ms < 10000 ? h->timeout_ms : 10000));
	curl_easy_setopt(e, CURLOPT_USERAGENT, h->ua);
	if (h->connect_to)
		curl_easy_setopt(e, CURLOPT_CONNECT_TO, h->connect_to);
	curl_easy_setopt(e, CURLOPT_PROXY, h->proxy);
	curl_easy_setopt(e, CURLOPT_NOPROXY, h->noproxy);
	/* the configured CA is the only trust anchor (as in client-go): drop
	 * libcurl's default bundle and CA directory, which it would add */
	if (h->ca_data) {
		struct curl_blob b = { h->ca_data, h->ca_len, CURL_BLOB_NOCOPY };
		curl_easy_setopt(e, CURLOPT_CAINFO, NULL);
		curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
		curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &b);
	} else if (h->ca_file) {
		curl_easy_setopt(e, CURLOPT_CAINFO, h->ca_file);
		curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
	}
	if (h->insecure) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (h->cert_data) {
		struct curl_blob b = { h->cert_data, h->cert_len, CURL_BLOB_NOCOPY };
		curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &b);
		curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
	} else if (h->cert_file) {
		curl_easy_setopt(e, CURLOPT_SSLCERT, h->cert_file);
	}
	if (h->key_data) {
		struct curl_blob b = { h->key_data, h->key_len, CURL_BLOB_NOCOPY };
		curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &b);
		curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
	} else if (h->key_file) {
		curl_easy_setopt(e, CURLOPT_SSLKEY, h->key_file);
	}
	if (h->username && h->password) {
		curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(e, CURLOPT_USERNAME, h->username);
		curl_easy_setopt(e, CURLOPT_PASSWORD, h->password);
	}
	*hdrs = auth_header(h, e, NULL, &rc, gen);
	if (rc < 0)
		return rc;
	if (asprintf(&line, "Accept: %s", accept ? accept : "application/json") < 0)
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	struct curl_slist *l = curl_slist_append(*hdrs, line);
	free(line);
	if (!l)
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	*hdrs = l;
	if (ctype) {
		if (asprintf(&line, "Content-Type: %s", ctype) < 0)
			return kvs_error_set(KVS_ENOMEM, "out of memory");
		l = curl_slist_append(*hdrs, line);
		free(line);
		if (!l)
			return kvs_error_set(KVS_ENOMEM, "out of memory");
		*hdrs = l;
	}
	if (!(l = curl_slist_append(*hdrs, "Expect:")))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	*hdrs = l;
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, *hdrs);
	return 0;
}

/*
 * libcurl's receive buffer per transfer (its default is 16 KiB): a 1 MB
 * segment answer is then 8 reads and write callbacks instead of 64, and
 * the 64 MiB get through kapi-server spends about a tenth less CPU in the
 * client (docs/design.md "Get"). It is allocated per easy handle, so the
 * handles a client keeps hold at most POOL_MAX of them.
 */
#define RECV_BUFFER (128L * 1024L)

static int xfer_start(struct xfer *x, CURLM *m)
{
	kvs__http *h = x->h;
	kvs__http_req *r = x->req;
	int rc;

	if (!x->easy && !(x->easy = easy_get(h)))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	curl_easy_reset(x->easy);
	curl_slist_free_all(x->hdrs);
	x->hdrs = NULL;
	x->len = 0;
	x->too_big = 0;
	x->errbuf[0] = '\0';
	if ((rc = setup_common(h, x->easy, r->path, &x->hdrs, r->accept, r->content_type,
	                       x->errbuf, &x->cred_gen)) < 0)
		return rc;
	curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, (long)h->timeout_ms);
	curl_easy_setopt(x->easy, CURLOPT_BUFFERSIZE, RECV_BUFFER);
	curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(x->easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(x->easy, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
	if (strcmp(r->method, "GET") != 0) {
		if (strcmp(r->method, "POST") != 0)
			curl_easy_setopt(x->easy, CURLOPT_CUSTOMREQUEST, r->method);
		if (r->body || strcmp(r->method, "DELETE") != 0) {
			curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
			curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, r->body ? r->body : "");
		}
	}
	if (x->lost)
		r->resent_after_loss = 1;
	r->attempts++;
	if (curl_multi_add_handle(m, x->easy) != CURLM_OK)
		return kvs_error_set(KVS_ENOMEM, "curl_multi_add_handle failed");
	x->state = 1;
	return 0;
}

static int transient_curl(CURLcode c)
{
	return c == CURLE_COULDNT_CONNECT || c == CURLE_OPERATION_TIMEDOUT ||
	       c == CURLE_GOT_NOTHING || c == CURLE_SEND_ERROR || c == CURLE_RECV_ERROR ||
	       c == CURLE_PARTIAL_FILE || c == CURLE_HTTP2 || c == CURLE_HTTP2_STREAM ||
	       c == CURLE_SSL_CONNECT_ERROR || c == CURLE_WEIRD_SERVER_REPLY;
}

static void xfer_final(struct xfer *x)
{
	x->state = 2;
	x->done_pending = x->req->done != NULL;
	curl_slist_free_all(x->hdrs);
	x->hdrs = NULL;
}

/* A transfer finished with `res`: decide between done and retry. */
static void xfer_done(struct xfer *x, CURLcode res)
{
	kvs__http *h = x->h;
	kvs__http_req *r = x->req;
	unsigned max_attempts = h->retries + 1;
	long status = 0;
	int64_t delay = -1;

	note_date(h, x->date_ms);
	if (res == CURLE_OK) {
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
		if (status == 401 && (h->token_file || h->exec) && !x->reauthed) {
			/* the token may have rotated under us: re-read it (or run the
			 * plugin again, unless another request already did), once */
			int frc = 0;

			pthread_mutex_lock(&h->tok_lock);
			if (!h->exec || h->cred_gen == x->cred_gen)
				frc = token_refresh_locked(h, 1);
			pthread_mutex_unlock(&h->tok_lock);
			if (frc < 0 && h->exec) {
				r->rc = frc;
				snprintf(r->err, sizeof(r->err), "%s", kvs_error_last());
				xfer_final(x);
				return;
			}
			x->reauthed = 1;
			r->attempts--;
			delay = 0;
		} else if ((status == 429 || status == 500 || status == 502 || status == 503 ||
		            status == 504) &&
		           r->attempts < max_attempts) {
			curl_off_t ra = -1;

			/* a 500/502/504 may come after the write was applied (the API
			 * server's own timeout, a proxy): its outcome is unknown, like a
			 * lost response. 429 and 503 were refused before handling. */
			if (status != 429 && status != 503 && strcmp(r->method, "GET") != 0)
				x->lost = 1;
			curl_easy_getinfo(x->easy, CURLINFO_RETRY_AFTER, &ra);
			/* compare before multiplying: a huge Retry-After must not overflow */
			if ((status == 429 || status == 503) && ra > 0)
				delay = ra > RETRY_AFTER_CAP_MS / 1000 ? RETRY_AFTER_CAP_MS : ra * 1000;
			else
				delay = backoff_ms(r->attempts);
		}
		if (delay < 0) {
			curl_off_t ra = -1;

			curl_easy_getinfo(x->easy, CURLINFO_RETRY_AFTER, &ra);
			r->retry_after_s = ra > 0 ? (ra > 86400 ? 86400 : (long)ra) : 0;
			r->rc = 0;
			r->status = status;
			{
				char *ct = NULL;

				curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &ct);
				snprintf(r->resp_type, sizeof(r->resp_type), "%s", ct ? ct : "");
			}
			if (x->buf)   /* (kept from an earlier attempt, or sized by a header) */
				x->buf[x->len] = '\0';
			r->resp = x->buf;
			r->resp_len = x->len;
			if (!r->resp)
				r->resp = calloc(1, 1);
			x->buf = NULL;
			x->len = x->cap = 0;
			xfer_final(x);
			return;
		}
	} else {
		if (x->too_big) {
			r->rc = kvs_error_set(KVS_EIO, "%s %s%s: response larger than the %zu-byte cap",
			                      r->method, h->base, r->path, x->max);
			snprintf(r->err, sizeof(r->err), "%s", kvs_error_last());
			xfer_final(x);
			return;
		}
		if (res == CURLE_COULDNT_CONNECT)
			x->connect_fails++;
		else if (res != CURLE_COULDNT_RESOLVE_HOST)
			x->lost = 1;
		if (transient_curl(res) && r->attempts < max_attempts &&
		    (res != CURLE_COULDNT_CONNECT || x->connect_fails <= CONNECT_RETRIES))
			delay = backoff_ms(r->attempts);
		if (delay < 0) {
			int code = res == CURLE_OPERATION_TIMEDOUT ? KVS_ETIMEOUT : KVS_EIO;
			r->rc = kvs_error_set(code, "%s %s%s: %s%s%s (%u attempt%s)", r->method, h->base,
			                      r->path, curl_easy_strerror(res), x->errbuf[0] ? ": " : "",
			                      x->errbuf, r->attempts, r->attempts == 1 ? "" : "s");
			snprintf(r->err, sizeof(r->err), "%s", kvs_error_last());
			xfer_final(x);
			return;
		}
	}
	/* retry */
	x->state = 0;
	x->not_before = kvs__kube_mono_ms() + delay;
	x->len = 0;
}

void kvs__http_req_reset(kvs__http_req *r)
{
	free(r->resp);
	r->resp = NULL;
	r->resp_len = 0;
	r->rc = 0;
	r->status = 0;
	r->attempts = 0;
	r->retry_after_s = 0;
	r->resent_after_loss = 0;
	r->resp_type[0] = '\0';
	r->err[0] = '\0';
}

/* The done callbacks of the requests that became final. */
static void call_done(struct xfer *xs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (xs[i].done_pending) {
			xs[i].done_pending = 0;
			xs[i].req->done(xs[i].req, xs[i].req->done_ctx);
		}
}

int kvs__http_run(kvs__http *h, kvs__http_req *reqs, size_t n, unsigned concurrency)
{
	struct xfer *xs;
	CURLM *m;
	size_t done = 0, running = 0, called = 0;
	int rc = 0;

	if (n == 0)
		return 0;
	if (concurrency == 0)
		concurrency = 1;
	if (!(xs = calloc(n, sizeof(*xs))))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	if (!(m = multi_get(h))) {
		free(xs);
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	}
	/* keep a batch's connections for the next one: by default libcurl's
	 * cache holds 4 per easy handle still added, so as a batch drains it
	 * closed the oldest idle HTTP/1.1 connection and the next batch opened a
	 * new one */
	curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)(concurrency < 4 ? 4 : concurrency));
	for (size_t i = 0; i < n; i++) {
		kvs__http_req_reset(&reqs[i]);
		xs[i].h = h;
		xs[i].req = &reqs[i];
		xs[i].max = reqs[i].max_resp ? reqs[i].max_resp : 4u * 1024u * 1024u;
	}
	while (done < n) {
		int64_t now = kvs__kube_mono_ms(), wait = 1000;
		int still = 0, msgs = 0;
		CURLMsg *msg;

		/* start what may start */
		for (size_t i = 0; i < n && running < concurrency; i++) {
			struct xfer *x = &xs[i];

			if (x->state != 0 || x->not_before > now)
				continue;
			if (!x->reserved) {
				int64_t d = rl_reserve(h);
				x->reserved = 1;
				if (d > 0) {
					x->not_before = now + d;
					continue;
				}
			}
			x->reserved = 0;
			if ((rc = xfer_start(x, m)) < 0) {
				x->req->rc = rc;
				snprintf(x->req->err, sizeof(x->req->err), "%s", kvs_error_last());
				xfer_final(x);
				done++;
				continue;
			}
			running++;
		}
		rc = 0;
		if (done == n)
			break;
		if (called < done) {
			/* send what just started, then decode what is in */
			if (running)
				curl_multi_perform(m, &still);
			call_done(xs, n);
			called = done;
		}
		if (running) {
			curl_multi_perform(m, &still);
			while ((msg = curl_multi_info_read(m, &msgs)) != NULL) {
				struct xfer *x = NULL;

				if (msg->msg != CURLMSG_DONE)
					continue;
				curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
				CURLcode res = msg->data.result;
				curl_multi_remove_handle(m, msg->easy_handle);
				running--;
				xfer_done(x, res);
				if (x->state == 2)
					done++;
			}
		}
		if (done == n)
			break;
		/* how long until something can start */
		now = kvs__kube_mono_ms();
		for (size_t i = 0; i < n; i++)
			if (xs[i].state == 0) {
				int64_t d = xs[i].not_before - now;
				if (running >= concurrency && !xs[i].reserved)
					continue;
				if (d < wait)
					wait = d;
			}
		if (wait < 0)
			wait = 0;
		if (running)
			curl_multi_poll(m, NULL, 0, (int)wait, NULL);
		else
			sleep_ms(wait);
	}
	for (size_t i = 0; i < n; i++) {
		if (xs[i].state == 1)
			curl_multi_remove_handle(m, xs[i].easy);
		curl_slist_free_all(xs[i].hdrs);
		free(xs[i].buf);
		easy_put(h, xs[i].easy);
	}
	multi_put(h, m);
	call_done(xs, n);
	/* leave the detail of the last failure on this thread */
	for (size_t i = n; i-- > 0;)
		if (reqs[i].rc < 0) {
			kvs_error_set(reqs[i].rc, "%s", reqs[i].err);
			break;
		}
	free(xs);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* streams (watch)                                                          */

struct kvs__http_stream {
	kvs__http *h;
	CURL *easy;
	CURLM *multi;
	struct curl_slist *hdrs;
	char *path;
	kvs__lines lines;      /* the body split into lines */
	int paused, finished, overflow, headers_done, nomem;
	CURLcode result;
	long status;
	char *errbody;         /* non-200 body */
	size_t errlen;
	int64_t date_ms;
	uint64_t cred_gen;
	char errbuf[CURL_ERROR_SIZE];
};

static size_t st_header(char *p, size_t sz, size_t nm, void *u)
{
	kvs__http_stream *s = u;
	size_t n = sz * nm;
	int64_t d = header_date(p, n);

	if (d > 0)
		s->date_ms = d;
	if (n >= 5 && strncmp(p, "HTTP/", 5) == 0)
		s->headers_done = 0;
	if ((n == 2 && p[0] == '\r' && p[1] == '\n') || (n == 1 && p[0] == '\n')) {
		long st = 0;
		curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &st);
		if (st >= 200) {
			s->status = st;
			s->headers_done = 1;
		}
	}
	return n;
}

/* The line framer (http.h): the watch body split on LF, CR stripped. */
void kvs__lines_init(kvs__lines *L, size_t max_line)
{
	memset(L, 0, sizeof(*L));
	L->max_line = max_line;
}

void kvs__lines_clear(kvs__lines *L)
{
	for (size_t i = 0; i < L->qn; i++)
		free(L->q[(L->qhead + i) % L->qcap].p);
	free(L->q);
	free(L->part);
	kvs__lines_init(L, L->max_line);
}

static int push_line(kvs__lines *L)
{
	struct kvs__line *l;

	if (L->plen && L->part[L->plen - 1] == '\r')
		L->plen--;
	if (L->plen == 0)
		return 0; /* blank line: nothing (the buffer is reused) */
	if (L->qn == L->qcap) {
		/* one write callback (up to 16 KiB, more after a pause) may hold
		 * hundreds of short events: grow the ring, keeping the order */
		size_t nc = L->qcap ? L->qcap * 2 : STREAM_QUEUE;
		struct kvs__line *nq = malloc(nc * sizeof(*nq));

		if (!nq)
			return KVS_ENOMEM;
		for (size_t i = 0; i < L->qn; i++)
			nq[i] = L->q[(L->qhead + i) % L->qcap];
		free(L->q);
		L->q = nq;
		L->qcap = nc;
		L->qhead = 0;
	}
	l = &L->q[(L->qhead + L->qn) % L->qcap];
	l->p = L->part;
	l->n = L->plen;
	l->p[l->n] = '\0';
	L->qn++;
	L->part = NULL;
	L->plen = L->pcap = 0;
	return 0;
}

int kvs__lines_feed(kvs__lines *L, const char *p, size_t n)
{
	size_t off = 0;
	int rc;

	while (off < n) {
		const char *nl = memchr(p + off, '\n', n - off);
		size_t take = nl ? (size_t)(nl - (p + off)) : n - off;

		if (take > L->max_line - L->plen)
			return KVS_EIO;
		if (L->plen + take + 1 > L->pcap) {
			size_t nc = L->pcap ? L->pcap : 4096;
			char *nb;

			while (nc < L->plen + take + 1)
				nc *= 2;
			if (nc > L->max_line + 1)
				nc = L->max_line + 1;
			if (!(nb = realloc(L->part, nc)))
				return KVS_ENOMEM;
			L->part = nb;
			L->pcap = nc;
		}
		memcpy(L->part + L->plen, p + off, take);
		L->plen += take;
		off += take;
		if (nl) {
			off++;
			if ((rc = push_line(L)) < 0)
				return rc;
		}
	}
	return 0;
}

int kvs__lines_pop(kvs__lines *L, char **line, size_t *len)
{
	struct kvs__line *l;

	if (!L->qn)
		return 0;
	l = &L->q[L->qhead];
	*line = l->p;
	*len = l->n;
	l->p = NULL;
	L->qhead = (L->qhead + 1) % L->qcap;
	L->qn--;
	return 1;
}

static size_t st_body(char *p, size_t sz, size_t nm, void *u)
{
	kvs__http_stream *s = u;
	size_t n = sz * nm;
	int rc;

	if (s->status != 200) {
		size_t take = n;
		char *nb;

		if (s->errlen + take > ERRBODY_MAX)
			take = ERRBODY_MAX - s->errlen;
		if (take) {
			if (!(nb = realloc(s->errbody, s->errlen + take + 1)))
				return 0;
			s->errbody = nb;
			memcpy(nb + s->errlen, p, take);
			s->errlen += take;
			nb[s->errlen] = '\0';
		}
		return n;
	}
	/* back-pressure: pause while lines wait; the lines of one callback are
	 * bounded by its size (at most CURL_MAX_WRITE_SIZE, or what curl held
	 * during a pause) and the queue grows to take them */
	if (s->lines.qn >= STREAM_QUEUE / 2) {
		s->paused = 1;
		return CURL_WRITEFUNC_PAUSE;
	}
	if ((rc = kvs__lines_feed(&s->lines, p, n)) < 0) {
		if (rc == KVS_ENOMEM)
			s->nomem = 1;
		else
			s->overflow = 1;
		return 0;
	}
	return n;
}

/* Drive the transfer for at most timeout_ms (0 = once). */
static void st_pump(kvs__http_stream *s, int timeout_ms)
{
	int still = 0, msgs = 0;
	CURLMsg *msg;

	if (s->finished)
		return;
	if (timeout_ms > 0)
		curl_multi_poll(s->multi, NULL, 0, timeout_ms, NULL);
	curl_multi_perform(s->multi, &still);
	while ((msg = curl_multi_info_read(s->multi, &msgs)) != NULL) {
		if (msg->msg == CURLMSG_DONE) {
			s->finished = 1;
			s->result = msg->data.result;
			if (!s->status)
				curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &s->status);
		}
	}
	note_date(s->h, s->date_ms);
}

void kvs__http_stream_close(kvs__http_stream *s)
{
	if (!s)
		return;
	if (s->multi && s->easy)
		curl_multi_remove_handle(s->multi, s->easy);
	/* a watch connection is mid-stream: never give it back to the pool */
	if (s->easy) {
		curl_easy_cleanup(s->easy);
	}
	if (s->multi)
		curl_multi_cleanup(s->multi);
	curl_slist_free_all(s->hdrs);
	kvs__lines_clear(&s->lines);
	free(s->errbody);
	free(s->path);
	free(s);
}

static int stream_open_once(kvs__http_stream **out, kvs__http *h, const char *path,
                            const char *accept, size_t max_line, long *status, char **errbody,
                            size_t *errlen, uint64_t *gen);

/* A 401 on opening a watch: re-read the token file or re-run the plugin
 * (unless another request already did) and try once more. */
int kvs__http_stream_open(kvs__http_stream **out, kvs__http *h, const char *path,
                          const char *accept, size_t max_line, long *status, char **errbody,
                          size_t *errlen)
{
	uint64_t gen = 0;
	int rc = stream_open_once(out, h, path, accept, max_line, status, errbody, errlen, &gen);

	if (rc < 0 || *status != 401 || !(h->exec || h->token_file))
		return rc;
	pthread_mutex_lock(&h->tok_lock);
	if (!h->exec || h->cred_gen == gen)
		rc = token_refresh_locked(h, 1);
	pthread_mutex_unlock(&h->tok_lock);
	if (rc < 0 && h->exec) {
		free(*errbody);
		*errbody = NULL;
		*errlen = 0;
		*status = 0;
		return rc;
	}
	free(*errbody);
	return stream_open_once(out, h, path, accept, max_line, status, errbody, errlen, &gen);
}

static int stream_open_once(kvs__http_stream **out, kvs__http *h, const char *path,
                            const char *accept, size_t max_line, long *status, char **errbody,
                            size_t *errlen, uint64_t *gen)
{
	kvs__http_stream *s = calloc(1, sizeof(*s));
	int64_t deadline, d;
	int rc;

	*out = NULL;
	*status = 0;
	*errbody = NULL;
	*errlen = 0;
	if (!s)
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	s->h = h;
	kvs__lines_init(&s->lines, max_line);
	if (!(s->path = strdup(path)) || !(s->easy = curl_easy_init()) ||
	    !(s->multi = curl_multi_init())) {
		kvs__http_stream_close(s);
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	}
	if ((rc = setup_common(h, s->easy, path, &s->hdrs, accept, NULL, s->errbuf, &s->cred_gen)) < 0) {
		kvs__http_stream_close(s);
		return rc;
	}
	*gen = s->cred_gen;
	/* no total timeout: a watch lasts; the server ends it (timeoutSeconds) */
	curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, 0L);
	curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, st_body);
	curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(s->easy, CURLOPT_HEADERFUNCTION, st_header);
	curl_easy_setopt(s->easy, CURLOPT_HEADERDATA, s);
	/* the stream needs its own connection: no sharing of this one */
	curl_easy_setopt(s->easy, CURLOPT_SHARE, NULL);
	if ((d = rl_reserve(h)) > 0)
		sleep_ms(d);
	if (curl_multi_add_handle(s->multi, s->easy) != CURLM_OK) {
		kvs__http_stream_close(s);
		return kvs_error_set(KVS_ENOMEM, "curl_multi_add_handle failed");
	}
	deadline = kvs__kube_mono_ms() + (h->timeout_ms ? h->timeout_ms : 30000);
	for (;;) {
		int64_t left = deadline - kvs__kube_mono_ms();

		st_pump(s, 0);
		if (s->headers_done && s->status == 200)
			break;
		if (s->finished) {
			if (s->result != CURLE_OK && s->status == 0) {
				rc = kvs_error_set(s->result == CURLE_OPERATION_TIMEDOUT ? KVS_ETIMEOUT : KVS_EIO,
				                   "watch %s%s: %s%s%s", h->base, path,
				                   curl_easy_strerror(s->result), s->errbuf[0] ? ": " : "",
				                   s->errbuf);
				kvs__http_stream_close(s);
				return rc;
			}
			break;
		}
		if (left <= 0) {
			rc = kvs_error_set(KVS_ETIMEOUT, "watch %s%s: no response within %u ms", h->base,
			                   path, h->timeout_ms);
			kvs__http_stream_close(s);
			return rc;
		}
		curl_multi_poll(s->multi, NULL, 0, left > 200 ? 200 : (int)left, NULL);
	}
	*status = s->status;
	if (s->status != 200) {
		*errbody = s->errbody;
		*errlen = s->errlen;
		s->errbody = NULL;
		kvs__http_stream_close(s);
		return 0;
	}
	*out = s;
	return 0;
}

int kvs__http_stream_next(kvs__http_stream *s, char **line, size_t *len, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? INT64_MAX : kvs__kube_mono_ms() + timeout_ms;

	*line = NULL;
	*len = 0;
	for (;;) {
		if (kvs__lines_pop(&s->lines, line, len))
			return 0;
		if (s->finished) {
			if (s->nomem)
				return kvs_error_set(KVS_ENOMEM, "watch %s: out of memory", s->path);
			if (s->overflow)
				return kvs_error_set(KVS_EIO, "watch %s%s: event line over %zu bytes",
				                     s->h->base, s->path, s->lines.max_line);
			if (s->result != CURLE_OK)
				return kvs_error_set(KVS_EIO, "watch %s%s: stream broke: %s%s%s", s->h->base,
				                     s->path, curl_easy_strerror(s->result),
				                     s->errbuf[0] ? ": " : "", s->errbuf);
			return kvs_error_set(KVS_EIO, "watch %s%s: stream ended by the server", s->h->base,
			                     s->path);
		}
		if (s->paused) {
			s->paused = 0;
			curl_easy_pause(s->easy, CURLPAUSE_CONT);
		}
		st_pump(s, 0);
		if (s->lines.qn || s->finished)
			continue;
		int64_t left = deadline == INT64_MAX ? 1000 : deadline - kvs__kube_mono_ms();
		if (left <= 0)
			return kvs_error_set(KVS_ETIMEOUT, "watch: no event within %d ms", timeout_ms);
		st_pump(s, left > 1000 ? 1000 : (int)left);
	}
}
