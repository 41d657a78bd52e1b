/*
 * error.c — error codes, their names, and the per-thread detail of the last
 * failure (libgit2's git_error_last idea). The detail buffer is a fixed
 * thread-local array: recording an error never allocates, so an out-of-memory
 * failure can still be described.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvsplit.h"
#include "kvsplit/backend.h"
#include "valbuf.h"

#define KVS_ERRBUF 1024

static _Thread_local char errbuf[KVS_ERRBUF];

int kvs_version(void)
{
	return KVS_VERSION_NUMBER;
}

const char *kvs_strerror(int code)
{
	switch ((kvs_error_code)code) {
	case KVS_OK: return "success";
	case KVS_ERROR: return "error";
	case KVS_ENOTFOUND: return "not found";
	case KVS_ECONFLICT: return "version conflict";
	case KVS_EEXISTS: return "already exists";
	case KVS_ECORRUPT: return "stored data is corrupt";
	case KVS_ETOOBIG: return "too big";
	case KVS_EIO: return "I/O or transport error";
	case KVS_ENOMEM: return "out of memory";
	case KVS_EINVAL: return "invalid argument";
	case KVS_EGONE: return "history compacted (gone)";
	case KVS_EDENIED: return "permission denied";
	case KVS_ETIMEOUT: return "timed out";
	case KVS_ECANCELED: return "canceled";
	case KVS_EUNSUPPORTED: return "unsupported format or feature";
	case KVS_ECONFIG: return "bad configuration";
	case KVS_EINVALOBJ: return "object refused as invalid";
	case KVS_EITER_DONE: return "iteration done";
	case KVS_ESTALE: return "segments may have been collected: the put took longer than its touch window";
	case KVS_ERANGE: return "buffer too small for the value";
	}
	return "unknown error";
}

const char *kvs_error_last(void)
{
	return errbuf;
}

int kvs_error_set(int code, const char *fmt, ...)
{
	va_list ap;

	if (fmt == NULL) {
		errbuf[0] = '\0';
		return code;
	}
	/* Format into a scratch buffer first: callers may pass kvs_error_last()
	 * as an argument to prefix context onto the previous detail. */
	char tmp[KVS_ERRBUF];
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	memcpy(errbuf, tmp, sizeof(errbuf));
	return code;
}

int kvs_op_result(kvs_op *op, int rc)
{
	if (!op)
		return rc;
	op->result = rc;
	if (rc < 0) {
		size_t n = strnlen(errbuf, sizeof(op->detail) - 1);  /* truncated if longer */
		memcpy(op->detail, errbuf, n);
		op->detail[n] = '\0';
	} else {
		op->detail[0] = '\0';
	}
	return rc;
}

void kvs_free(void *ptr)
{
	kvs__valbuf_free(ptr);
}
