/*
 * kube/cert.h — look at a client certificate before sending it (private).
 */
#ifndef KVS_KUBE_CERT_H
#define KVS_KUBE_CERT_H

#include <stddef.h>
#include <stdint.h>

/**
 * Check a PEM client certificate and key (each given as bytes, or else as a
 * file): both parse, the key is the certificate's, and the certificate is
 * valid now. A server would only answer "401 Unauthorized"; this says why.
 * `what` names the source in messages ("user \"alice\"", "exec plugin ...").
 * On success *desc (malloc'd, may be NULL on no memory) describes the
 * certificate for messages: "client certificate CN=alice, O=devs".
 *
 * @return 0, KVS_ECONFIG (unreadable, mismatched, expired, not yet valid),
 *         KVS_ENOMEM
 */
int kvs__cert_check(char **desc, const uint8_t *cert, size_t cert_len, const char *cert_file,
                    const uint8_t *key, size_t key_len, const char *key_file, const char *what);

#endif
