/*
 * tests/kapi/auth.h — who a request is (auth.c): client certificates verified
 * against --client-ca as kube-apiserver's --client-ca-file does (user from
 * the CN, groups from the O entries), bearer tokens, anonymous requests.
 */
#ifndef KAPI_AUTH_H
#define KAPI_AUTH_H

#include <stdbool.h>
#include <cjson/cJSON.h>
#include <microhttpd.h>

/* A command-line option of auth.c: true if it was one (exits on a bad value). */
bool auth_option(const char *opt, const char *val);
/* PEM of --client-ca for MHD_OPTION_HTTPS_MEM_TRUST, or NULL. */
const char *auth_trust_pem(void);
/* Options text for --help. */
extern const char AUTH_USAGE[];
/*
 * Authenticate a request: a verified client certificate, else a listed
 * bearer token, else anonymous when allowed (no --token and
 * --anonymous-auth true). False: answer 401.
 */
bool auth_request(struct MHD_Connection *c);
/* The SelfSubjectReview (kubectl auth whoami) of the request. */
cJSON *auth_whoami(struct MHD_Connection *c);

#endif
