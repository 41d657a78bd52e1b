/*
 * header_test.c — `make header-test`: the public headers compile alone as
 * C11 -pedantic and as C++11, and every _INIT macro initializes every field
 * of its struct (-Wextra's missing-field-initializers catches a field added
 * without extending its macro).
 */
#include <kvsplit.h>
#include <kvsplit/backend.h>

int main(void)
{
	kvs_options so = KVS_OPTIONS_INIT;
	kvs_put_options po = KVS_PUT_OPTIONS_INIT;
	kvs_get_options go = KVS_GET_OPTIONS_INIT;
	kvs_delete_options dopt = KVS_DELETE_OPTIONS_INIT;
	kvs_stat_options sopt = KVS_STAT_OPTIONS_INIT;
	kvs_list_options lo = KVS_LIST_OPTIONS_INIT;
	kvs_kube_options ko = KVS_KUBE_OPTIONS_INIT;
	kvs_watch_options wo = KVS_WATCH_OPTIONS_INIT;
	kvs_gc_options gco = KVS_GC_OPTIONS_INIT;
	kvs_fsck_options fo = KVS_FSCK_OPTIONS_INIT;
	kvs_mem_options mo = KVS_MEM_OPTIONS_INIT;
	kvs_map_stat_options mso = KVS_MAP_STAT_OPTIONS_INIT;
	kvs_history_options ho = KVS_HISTORY_OPTIONS_INIT;
	kvs_rollback_options ro = KVS_ROLLBACK_OPTIONS_INIT;
	unsigned int sum = so.version + po.version + go.version + dopt.version + sopt.version +
	                   lo.version + ko.version + wo.version + gco.version + fo.version +
	                   mo.version + mso.version + ho.version + ro.version;

	so.cache_bytes = KVS_CACHE_OFF;
	so.history = KVS_HISTORY_OFF;
	go.max_bytes = KVS_MAX_BYTES_UNLIMITED;
	ko.qps = KVS_KUBE_QPS_OFF;
	ko.retries = KVS_KUBE_NO_RETRIES;
	fo.read_data = KVS_FSCK_READ_NONE;
	return kvs_version() == 0 || sum == 0 || so.cache_bytes == 0 || go.max_bytes == 0 ||
	       ko.qps == 0 || fo.read_data == 0;
}
