/*
 * tests/kapi/auth.c — authentication as kube-apiserver does it.
 *
 * With --client-ca the TLS handshake asks for (does not require) a client
 * certificate, like kube-apiserver with --client-ca-file; a certificate is
 * then verified here with GnuTLS against that CA, for the client-auth key
 * purpose and for its validity period. A verified certificate names the
 * user (CN) and groups (each O). A presented but unverifiable certificate
 * authenticates nobody, so the request falls to the bearer token, then to
 * anonymous access, which --anonymous-auth false (or any --token) refuses:
 * 401 Unauthorized, as the real server answers.
 */
#include "kapi.h"
#include "auth.h"

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char AUTH_USAGE[] =
	"  --client-ca FILE       verify client certificates against this PEM CA (HTTPS):\n"
	"                         user from the CN, groups from O (--client-ca-file)\n"
	"  --anonymous-auth B     false: refuse unauthenticated requests (default true)\n";

static char *trust_pem;
static bool anonymous = true;

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct buf b = {0};
	char chunk[4096];
	size_t n;

	if (!f)
		return NULL;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		buf_add(&b, chunk, n);
	fclose(f);
	buf_add(&b, "", 0);
	return buf_take(&b, NULL);
}

bool auth_option(const char *opt, const char *val)
{
	if (!strcmp(opt, "--client-ca")) {
		if (!(trust_pem = slurp(val))) {
			fprintf(stderr, "kapi-server: cannot read --client-ca %s\n", val);
			exit(1);
		}
		return true;
	}
	if (!strcmp(opt, "--anonymous-auth")) {
		if (strcmp(val, "true") && strcmp(val, "false")) {
			fprintf(stderr, "kapi-server: --anonymous-auth wants true or false, got '%s'\n", val);
			exit(2);
		}
		anonymous = !strcmp(val, "true");
		return true;
	}
	return false;
}

const char *auth_trust_pem(void)
{
	return trust_pem;
}

struct ident {
	char user[256];
	char groups[8][256];
	int ngroups;
	bool authenticated;
};

/* 1 and *id from a verified client certificate; 0 when none was presented
 * or it did not verify. */
static int from_cert(struct MHD_Connection *c, struct ident *id)
{
	const union MHD_ConnectionInfo *ci;
	gnutls_session_t s;
	gnutls_typed_vdata_st purpose = { GNUTLS_DT_KEY_PURPOSE_OID,
	                                  (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT, 0 };
	unsigned status = 0, n = 0;
	const gnutls_datum_t *peers;
	gnutls_x509_crt_t crt;
	size_t sz;

	if (!trust_pem || !(ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION)) ||
	    !(s = ci->tls_session))
		return 0;
	if (!(peers = gnutls_certificate_get_peers(s, &n)) || n == 0)
		return 0;
	if (gnutls_certificate_verify_peers(s, &purpose, 1, &status) < 0 || status != 0)
		return 0;
	if (gnutls_x509_crt_init(&crt) < 0)
		return 0;
	if (gnutls_x509_crt_import(crt, &peers[0], GNUTLS_X509_FMT_DER) < 0) {
		gnutls_x509_crt_deinit(crt);
		return 0;
	}
	sz = sizeof id->user;
	if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, id->user, &sz) < 0)
		id->user[0] = 0;
	for (unsigned i = 0; id->ngroups < 8; i++) {
		sz = sizeof id->groups[0];
		if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_ORGANIZATION_NAME, i, 0,
		                                  id->groups[id->ngroups], &sz) < 0)
			break;
		id->ngroups++;
	}
	gnutls_x509_crt_deinit(crt);
	if (!id->user[0])
		return 0; /* kube-apiserver: "missing CN" refuses the certificate */
	id->authenticated = true;
	return 1;
}

static bool from_token(struct MHD_Connection *c, struct ident *id)
{
	const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);

	if (!a || strncasecmp(a, "Bearer ", 7) != 0)
		return false;
	a += 7;
	while (*a == ' ')
		a++;
	for (size_t i = 0; i < g_cfg.ntokens; i++)
		if (strcmp(a, g_cfg.tokens[i]) == 0) {
			snprintf(id->user, sizeof id->user, "%s", g_cfg.user);
			id->authenticated = true;
			return true;
		}
	return false;
}

static bool identify(struct MHD_Connection *c, struct ident *id)
{
	memset(id, 0, sizeof *id);
	if (from_cert(c, id) || from_token(c, id))
		return true;
	if (g_cfg.ntokens || !anonymous)
		return false;
	snprintf(id->user, sizeof id->user, "system:anonymous");
	snprintf(id->groups[id->ngroups++], sizeof id->groups[0], "system:unauthenticated");
	return true;
}

bool auth_request(struct MHD_Connection *c)
{
	struct ident id;

	return identify(c, &id);
}

cJSON *auth_whoami(struct MHD_Connection *c)
{
	struct ident id;
	cJSON *o = cJSON_CreateObject(), *st, *ui, *g;
	char ts[32];

	identify(c, &id);
	cJSON_AddStringToObject(o, "kind", "SelfSubjectReview");
	cJSON_AddStringToObject(o, "apiVersion", "authentication.k8s.io/v1");
	now_rfc3339(ts);
	cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "metadata"), "creationTimestamp", ts);
	st = cJSON_AddObjectToObject(o, "status");
	ui = cJSON_AddObjectToObject(st, "userInfo");
	cJSON_AddStringToObject(ui, "username", id.user);
	g = cJSON_AddArrayToObject(ui, "groups");
	for (int i = 0; i < id.ngroups; i++)
		cJSON_AddItemToArray(g, cJSON_CreateString(id.groups[i]));
	if (id.authenticated)
		cJSON_AddItemToArray(g, cJSON_CreateString("system:authenticated"));
	return o;
}
