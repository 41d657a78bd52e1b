/*
 * kube/kubeconfig.h — find and read Kubernetes client credentials the way kubectl
 * does (private to the library). See kvs_kube_options in kvsplit.h.
 */
#ifndef KVS_KUBECONFIG_H
#define KVS_KUBECONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "kube/exec.h"

/** Where to connect and how to authenticate; every field may be NULL/0. */
typedef struct kvs__kubeconf {
	char *source;          /**< "kubeconfig /a/b (context x)" or "in-cluster service account" */
	char *context;         /**< context used (NULL in-cluster) */
	char *server;          /**< base URL, no trailing slash */
	char *ns;              /**< namespace (never NULL after a successful load) */
	char *ca_file;         /**< absolute path */
	uint8_t *ca_data;      /**< PEM */
	size_t ca_len;
	int insecure;          /**< insecure-skip-tls-verify */
	char *tls_server_name;
	char *proxy_url;       /**< the cluster's proxy-url (http, https, socks5, socks5h) */
	char *token;
	char *token_file;      /**< re-read when it changes (tokenFile, service account) */
	char *cert_file;
	uint8_t *cert_data;
	size_t cert_len;
	char *key_file;
	uint8_t *key_data;
	size_t key_len;
	char *username;
	char *password;
	int in_cluster;
	kvs__exec_conf *exec;  /**< the user's exec credential plugin, or NULL */
} kvs__kubeconf;

/**
 * Load credentials: `path`, else $KUBECONFIG (colon-separated; for each
 * field the first file that sets it wins), else ~/.kube/config, else the
 * in-cluster service account (always /var/run/secrets/kubernetes.io/
 * serviceaccount). `context` NULL = current-context; `ns` NULL = the context's, else
 * "default"; `server` overrides the cluster URL (and makes a config without
 * any kubeconfig acceptable).
 *
 * @return 0, KVS_ECONFIG (detail names the file, line and field), KVS_ENOMEM
 */
int kvs__kubeconf_load(kvs__kubeconf **out, const char *path, const char *context,
                       const char *ns, const char *server);
/**
 * The same, reading the service account from `sa_dir` (NULL = the standard
 * /var/run/secrets/kubernetes.io/serviceaccount). For tests only: production
 * code calls kvs__kubeconf_load(), and nothing in the environment moves the
 * directory.
 */
int kvs__kubeconf_load_sa(kvs__kubeconf **out, const char *path, const char *context,
                          const char *ns, const char *server, const char *sa_dir);
void kvs__kubeconf_free(kvs__kubeconf *kc);

/** Read a small file (≤ cap bytes) whole; NUL-terminated; malloc'd. 0 or -errno. */
int kvs__read_small_file(char **out, size_t *len, const char *path, size_t cap);

#endif
