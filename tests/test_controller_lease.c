/*
 * test_controller_lease.c — suite "controller_lease": the Lease JSON
 * mapping, and hostile Lease documents refused without effect.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "kvsplit.h"
#include "controller/lease_json.h"

Test(controller_lease, round_trips_through_json)
{
	kvc_lease a, b;
	memset(&a, 0, sizeof(a));
	strcpy(a.name, "g.m0");
	strcpy(a.group, "g");
	strcpy(a.rv, "123");
	strcpy(a.holder, "m0");
	a.duration_s = 15;
	a.acquire_us = 1700000000123456ll;
	a.renew_us = 1700000001000001ll;
	a.transitions = 3;
	a.epoch = 99;
	a.vshards = 1024;
	kvc_set_add(&a.claims, 0);
	kvc_set_add(&a.claims, 1);
	kvc_set_add(&a.claims, 1023);
	cJSON *j;
	cr_assert_eq(kvc_lease_to_json(&j, &a), 0);
	char *txt = cJSON_PrintUnformatted(j);
	cr_assert(strstr(txt, "\"renewTime\":\"2023-11-14T22:13:21.000001Z\""), "%s", txt);
	cr_assert(strstr(txt, "\"kvsplit.io/shards\":\"0-1,1023\""), "%s", txt);
	free(txt);
	cr_assert_eq(kvc_lease_from_json(&b, j), 0);
	cJSON_Delete(j);
	cr_assert(memcmp(&a, &b, sizeof(a)) == 0);
}

Test(controller_lease, a_plain_lease_from_another_program_reads)
{
	const char *doc = "{\"metadata\":{\"name\":\"x\",\"resourceVersion\":\"7\"},"
	                  "\"spec\":{\"holderIdentity\":\"h\",\"leaseDurationSeconds\":15,"
	                  "\"renewTime\":\"2024-01-02T03:04:05.5Z\"}}";
	cJSON *j = cJSON_Parse(doc);
	kvc_lease l;
	cr_assert_eq(kvc_lease_from_json(&l, j), 0);
	cJSON_Delete(j);
	cr_assert_str_eq(l.holder, "h");
	cr_assert_eq(l.vshards, 0);
	cr_assert_eq(l.renew_us % 1000000, 500000);
}

Test(controller_lease, hostile_documents_are_refused_and_change_nothing)
{
	static const char *const bad[] = {
		"{}",
		"{\"metadata\":{}}",
		"{\"metadata\":{\"name\":\"x\"},\"spec\":{\"leaseDurationSeconds\":-1}}",
		"{\"metadata\":{\"name\":\"x\"},\"spec\":{\"leaseDurationSeconds\":1.5}}",
		"{\"metadata\":{\"name\":\"x\"},\"spec\":{\"leaseDurationSeconds\":1e300}}",
		"{\"metadata\":{\"name\":\"x\"},\"spec\":{\"renewTime\":\"yesterday\"}}",
		"{\"metadata\":{\"name\":\"x\",\"annotations\":{\"kvsplit.io/vshards\":\"5000\",\"kvsplit.io/epoch\":\"1\",\"kvsplit.io/shards\":\"\"}}}",
		"{\"metadata\":{\"name\":\"x\",\"annotations\":{\"kvsplit.io/vshards\":\"64\",\"kvsplit.io/epoch\":\"-1\",\"kvsplit.io/shards\":\"\"}}}",
		"{\"metadata\":{\"name\":\"x\",\"annotations\":{\"kvsplit.io/vshards\":\"64\",\"kvsplit.io/epoch\":\"1\",\"kvsplit.io/shards\":\"64\"}}}",
		"{\"metadata\":{\"name\":\"x\",\"annotations\":{\"kvsplit.io/vshards\":\"64\",\"kvsplit.io/epoch\":\"1\"}}}",
		"{\"metadata\":{\"name\":\"x\",\"annotations\":{\"kvsplit.io/vshards\":\"0\",\"kvsplit.io/epoch\":\"1\",\"kvsplit.io/shards\":\"\"}}}",
	};
	kvc_lease l, keep;
	memset(&l, 0xab, sizeof(l));
	keep = l;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cJSON *j = cJSON_Parse(bad[i]);
		cr_assert_not_null(j);
		cr_assert_eq(kvc_lease_from_json(&l, j), KVS_ECORRUPT, "accepted %s", bad[i]);
		cJSON_Delete(j);
		cr_assert(memcmp(&l, &keep, sizeof(l)) == 0);
	}
	/* A name longer than any valid one. */
	char big[600];
	memset(big, 'a', sizeof(big));
	big[sizeof(big) - 1] = 0;
	cJSON *j = cJSON_CreateObject(), *md = cJSON_AddObjectToObject(j, "metadata");
	cJSON_AddStringToObject(md, "name", big);
	cr_assert_eq(kvc_lease_from_json(&l, j), KVS_ECORRUPT);
	cJSON_Delete(j);
}
