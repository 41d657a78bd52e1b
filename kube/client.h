/*
 * kube/client.h — private parts of the Kubernetes client (kube/client.c)
 * shared with the ConfigMap backend. The API is include/kvsplit/kube.h.
 */
#ifndef KVS_KUBE_CLIENT_H
#define KVS_KUBE_CLIENT_H

#include "kvsplit/kube.h"

/**
 * The client-side check of an object name (`what` names the request in the
 * detail): 1..1024 bytes, not "." or "..". KVS_EINVAL otherwise. The server
 * judges the rest.
 */
int kvs__kube_check_name(const char *what, const char *name);

#endif
