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
#include "controller/member.h"

/**
 * @param[out] out  an API over `kube` (borrowed; must outlive it) in
 *                  namespace `ns` (NULL: the client's); kvc_kubeapi_free it
 */
int kvc_kubeapi_new(kvc_api **out, kvs_kube *kube, const char *ns);
void kvc_kubeapi_free(kvc_api *api);

/**
 * Client options for the keepalive's Lease calls, on top of `o` (kubeconfig,
 * namespace...): a request timeout of a quarter of the renew deadline (at
 * least 200 ms) and one retry, so that one renewal cannot outlive the renew
 * deadline as it could with the client's defaults (30 s, 6 retries). Give
 * the membership its own client opened with these.
 */
void kvc_kubeapi_lease_options(kvs_kube_options *o, const kvc_member_opts *mo);

#endif
