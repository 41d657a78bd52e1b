/*
 * kube/cert.c — a client certificate checked with OpenSSL before use, so a
 * wrong or expired one gets a message that says so (kube-apiserver answers
 * every failed x509 authentication with a bare 401).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "kvsplit.h"
#include "kvsplit/backend.h"
#include "kube/cert.h"

static BIO *open_bio(const uint8_t *data, size_t len, const char *file)
{
	if (data)
		return len <= 0x7fffffff ? BIO_new_mem_buf(data, (int)len) : NULL;
	return file ? BIO_new_file(file, "r") : NULL;
}

static void asn1_time(char *out, size_t cap, const ASN1_TIME *t)
{
	BIO *b = BIO_new(BIO_s_mem());
	int n = 0;

	out[0] = '\0';
	if (b && ASN1_TIME_print(b, t))
		n = BIO_read(b, out, (int)cap - 1);
	out[n > 0 ? n : 0] = '\0';
	BIO_free(b);
}

/* "CN=alice, O=devs" from the subject (the user and groups kube-apiserver reads). */
static char *subject_desc(X509 *x)
{
	X509_NAME *n = X509_get_subject_name(x);
	char buf[512];
	size_t off = 0;
	static const struct { int nid; const char *tag; } want[] = {
		{ NID_commonName, "CN" }, { NID_organizationName, "O" }
	};

	buf[0] = '\0';
	for (size_t w = 0; w < 2; w++) {
		for (int i = -1; (i = X509_NAME_get_index_by_NID(n, want[w].nid, i)) >= 0;) {
			ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i));
			unsigned char *u = NULL;
			int l = ASN1_STRING_to_UTF8(&u, s);
			if (l >= 0 && off + 8 < sizeof(buf)) {
				int wr = snprintf(buf + off, sizeof(buf) - off, "%s%s=%.*s", off ? ", " : "",
				                  want[w].tag, l > 100 ? 100 : l, (char *)u);
				if (wr > 0)
					off += (size_t)wr < sizeof(buf) - off ? (size_t)wr : sizeof(buf) - off - 1;
			}
			OPENSSL_free(u);
		}
	}
	char *d = NULL;
	if (asprintf(&d, "client certificate %s", buf[0] ? buf : "(no CN)") < 0)
		d = NULL;
	return d;
}

int kvs__cert_check(char **desc, const uint8_t *cert, size_t cert_len, const char *cert_file,
                    const uint8_t *key, size_t key_len, const char *key_file, const char *what)
{
	const char *cs = cert ? "client-certificate-data" : cert_file;
	const char *ks = key ? "client-key-data" : key_file;
	BIO *cb = open_bio(cert, cert_len, cert_file), *kb = NULL;
	X509 *x = NULL;
	EVP_PKEY *k = NULL;
	char when[64];
	int rc = 0;

	*desc = NULL;
	if (!cb || !(x = PEM_read_bio_X509(cb, NULL, NULL, NULL))) {
		rc = kvs_error_set(KVS_ECONFIG, "%s: client certificate %s is not a PEM certificate",
		                   what, cs ? cs : "?");
		goto out;
	}
	if (!(kb = open_bio(key, key_len, key_file)) ||
	    !(k = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL))) {
		rc = kvs_error_set(KVS_ECONFIG, "%s: client key %s is not a PEM private key "
		                   "(without a passphrase)", what, ks ? ks : "?");
		goto out;
	}
	if (X509_check_private_key(x, k) != 1) {
		rc = kvs_error_set(KVS_ECONFIG, "%s: client key %s does not belong to client "
		                   "certificate %s", what, ks ? ks : "?", cs ? cs : "?");
		goto out;
	}
	if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0) {
		asn1_time(when, sizeof(when), X509_get0_notAfter(x));
		rc = kvs_error_set(KVS_ECONFIG, "%s: client certificate %s expired (not after %s)",
		                   what, cs ? cs : "?", when);
		goto out;
	}
	if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0) {
		asn1_time(when, sizeof(when), X509_get0_notBefore(x));
		rc = kvs_error_set(KVS_ECONFIG, "%s: client certificate %s is not valid yet (not "
		                   "before %s)", what, cs ? cs : "?", when);
		goto out;
	}
	*desc = subject_desc(x);
out:
	ERR_clear_error(); /* leave nothing in this thread's queue for libcurl to find */
	EVP_PKEY_free(k);
	X509_free(x);
	BIO_free(kb);
	BIO_free(cb);
	return rc;
}
