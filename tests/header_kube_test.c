/*
 * header_kube_test.c — `make header-test`: include/kvsplit/kube.h compiles
 * alone as C11 -pedantic and as C++11, and every _INIT macro initializes
 * every field of its struct (-Wextra's missing-field-initializers catches a
 * field added without extending its macro).
 */
#include <kvsplit/kube.h>

int main(void)
{
	kvs_kube_status st = KVS_KUBE_STATUS_INIT;
	kvs_kube_get_options go = KVS_KUBE_GET_OPTIONS_INIT;
	kvs_kube_list_options lo = KVS_KUBE_LIST_OPTIONS_INIT;
	kvs_kube_watch_options wo = KVS_KUBE_WATCH_OPTIONS_INIT;
	kvs_kube_patch_options po = KVS_KUBE_PATCH_OPTIONS_INIT;
	kvs_kube_delete_options dopt = KVS_KUBE_DELETE_OPTIONS_INIT;
	kvs_kube_request rq = KVS_KUBE_REQUEST_INIT;
	kvs_kube_resource mine = KVS_KUBE_RESOURCE_INIT("example.io", "v1", "things", 1);
	unsigned int sum = st.version + go.version + lo.version + wo.version + po.version +
	                   dopt.version + rq.version;

	return sum == 0 || st.http + rq.result != 0 || !mine.namespaced ||
	       !kvs_kube_configmaps.namespaced;
}
