/*
 * fixture_kube.h — the Kubernetes API test server (build/kapi-server) as a
 * test fixture: start one, reach it through a kubeconfig, drive its faults.
 * fx_kube_backend() of fixture.h is built on these.
 */
#ifndef KVS_TEST_FIXTURE_KUBE_H
#define KVS_TEST_FIXTURE_KUBE_H

#include "fixture.h"

typedef struct fx_kapi fx_kapi;

/**
 * Start a kapi-server on 127.0.0.1 (ephemeral port) with one namespace,
 * "kvs-test". tls=1: HTTPS with a test CA and a bearer token. `extra` is a
 * NULL-terminated list of more arguments (NULL = none). The server is killed
 * at exit (or with the test process).
 */
int fx_kapi_start(fx_kapi **out, int tls, const char *const *extra);
void fx_kapi_stop(fx_kapi *k);

const char *fx_kapi_url(const fx_kapi *k);
const char *fx_kapi_kubeconfig(const fx_kapi *k); /* context "kapi", namespace kvs-test */
const char *fx_kapi_token(const fx_kapi *k);      /* NULL without TLS */
const char *fx_kapi_ca(const fx_kapi *k);         /* NULL without TLS */
const char *fx_kapi_ns(const fx_kapi *k);

/** A backend through the server's kubeconfig; `base` (may be NULL) gives other options. */
int fx_kapi_backend(kvs_backend **out, fx_kapi *k, const kvs_kube_options *base);

/** The server a backend made by these fixtures talks to (NULL if none). */
fx_kapi *fx_kapi_of(const kvs_backend *b);

/**
 * Call a control endpoint (e.g. "POST", "/kapi/faults", json). Returns the
 * HTTP status (or -1); *resp (may be NULL) gets the body, malloc'd.
 */
long fx_kapi_call(fx_kapi *k, const char *method, const char *path, const char *json,
                  char **resp);
/** The same with a body of Content-Type `ctype` (a patch type, say). */
long fx_kapi_call_type(fx_kapi *k, const char *method, const char *path, const char *ctype,
                       const char *body, char **resp);
/**
 * GET `path` with an Accept header (`accept`, NULL = none). Returns the HTTP
 * status (or -1); *resp gets the body (malloc'd, *len bytes, which may hold
 * NULs, then a NUL), *ctype (if not NULL) the Content-Type (malloc'd).
 */
long fx_kapi_get_accept(fx_kapi *k, const char *path, const char *accept, char **resp,
                        size_t *len, char **ctype);
/**
 * Any request: `body` (may be NULL) of body_len bytes (which may hold NULs)
 * with Content-Type `ctype`, an Accept header (NULL = none). The answer as
 * for fx_kapi_get_accept().
 */
long fx_kapi_request(fx_kapi *k, const char *method, const char *path, const char *ctype,
                     const void *body, size_t body_len, const char *accept, char **resp,
                     size_t *len, char **rctype);
/** POST /kapi/faults with `json`; 0 on success. */
int fx_kapi_faults(fx_kapi *k, const char *json);

/**
 * Put nghttpx (Debian nghttp2-proxy) in front of a plain-HTTP server `k`: TLS
 * with the fixture's test CA, ALPN h2 and http/1.1, HTTP/1.1 to the server.
 * Stopped with the server. fx_kapi_front_kubeconfig() reaches the server
 * through it (CA, namespace kvs-test); fx_kapi_front_log() is nghttpx's
 * access log, one line per request: "CLIENT_PORT ALPN METHOD PATH STATUS".
 */
int fx_kapi_front_start(fx_kapi *k);
const char *fx_kapi_front_url(const fx_kapi *k);
const char *fx_kapi_front_kubeconfig(const fx_kapi *k);
const char *fx_kapi_front_log(const fx_kapi *k);
const char *fx_kapi_front_ca(const fx_kapi *k);

#endif
