/*
 * kube/exec.h — exec credential plugins (private to the library), as kubectl
 * runs them: client.authentication.k8s.io/v1 and v1beta1 ExecCredential on
 * the plugin's stdout, KUBERNETES_EXEC_INFO in its environment.
 */
#ifndef KVS_KUBE_EXEC_H
#define KVS_KUBE_EXEC_H

#include <stddef.h>
#include <stdint.h>

enum kvs__exec_interactive {
	KVS__EXEC_NEVER = 0,
	KVS__EXEC_IF_AVAILABLE = 1,
	KVS__EXEC_ALWAYS = 2
};

/** A kubeconfig user's `exec` section. */
typedef struct kvs__exec_conf {
	char *user;                 /**< the kubeconfig user's name (messages) */
	char *api_version;          /**< client.authentication.k8s.io/v1 or /v1beta1 */
	char *command;              /**< as resolved: a path with '/' is made absolute */
	char **args;                /**< nargs strings */
	size_t nargs;
	char **env;                 /**< "NAME=value", nenv strings */
	size_t nenv;
	char *install_hint;         /**< shown when the command cannot be run */
	int provide_cluster_info;
	int interactive;            /**< enum kvs__exec_interactive */
} kvs__exec_conf;

/** What a plugin returned. */
typedef struct kvs__exec_cred {
	char *token;                /**< NULL when the plugin gave a certificate only */
	uint8_t *cert;              /**< PEM client certificate, or NULL */
	size_t cert_len;
	uint8_t *key;               /**< PEM private key, or NULL */
	size_t key_len;
	int64_t expiry_ms;          /**< wall-clock ms of expirationTimestamp, 0 = none */
} kvs__exec_cred;

kvs__exec_conf *kvs__exec_conf_dup(const kvs__exec_conf *x);
void kvs__exec_conf_free(kvs__exec_conf *x);
/** Wipe and free the credential's fields (the struct itself is the caller's). */
void kvs__exec_cred_clear(kvs__exec_cred *c);

/**
 * The `spec.cluster` object of KUBERNETES_EXEC_INFO as JSON text (malloc'd),
 * for provideClusterInfo. `ca` is PEM (may be NULL).
 */
char *kvs__exec_cluster_json(const char *server, const char *tls_server_name, int insecure,
                             const uint8_t *ca, size_t ca_len, const char *proxy_url);

/**
 * Run the plugin once and read its ExecCredential. `cluster_json` (may be
 * NULL) goes into KUBERNETES_EXEC_INFO when the plugin asked for cluster
 * info. The plugin gets `timeout_ms` (a non-interactive run) to finish.
 * Messages name the plugin and say what was wrong; they never contain the
 * plugin's output on stdout (the credential).
 *
 * @return 0, KVS_ECONFIG (cannot run, failed, hung, printed something that is
 *         not an ExecCredential), KVS_ENOMEM
 */
int kvs__exec_run(kvs__exec_cred *out, const kvs__exec_conf *x, const char *cluster_json,
                  unsigned timeout_ms);

/**
 * Parse what a plugin printed on stdout (n bytes, at most EXEC_OUT_MAX) as
 * an ExecCredential of x->api_version; `w` names the plugin in details,
 * which never quote the credential. 0 and *out filled (clear it), or
 * KVS_ECONFIG / KVS_ENOMEM with *out empty. Exposed for
 * fuzz/exec_cred_fuzzer.c.
 */
int kvs__exec_cred_parse(kvs__exec_cred *out, const kvs__exec_conf *x, const char *w,
                         const char *text, size_t n);

#endif
