/*
 * kubeapi.h — the Lease API of api.h over the Kubernetes client
 * (include/kvsplit/kube.h): coordination.k8s.io/v1 Leases in one
 * namespace. Lists carry no resourceVersion, so they are quorum reads (the
 * claim check of member.h relies on it). A malformed Lease in the group
 * makes the whole list fail (KVS_ECORRUPT): its claims cannot be known, so
 * the member fences itself rather than guess.
 */
#ifndef KVC_KUBEAPI_H
#define KVC_KUBEAPI_H

#include <kvsplit/kube.h>

#include "controller/api.h"

/**
 * @param[out] out  an API over `kube` (borrowed; must outlive it) in
 *                  namespace `ns` (NULL: the client's); kvc_kubeapi_free it
 */
int kvc_kubeapi_new(kvc_api **out, kvs_kube *kube, const char *ns);
void kvc_kubeapi_free(kvc_api *api);

#endif
