/*
 * kubeconfig_fuzzer.c — kubeconfig files from arbitrary bytes, through the
 * real loader (kvs__kubeconf_load reads a path: the bytes go to a memfd read
 * as /proc/self/fd/N).
 *
 * The first byte chooses how the loader is called: bit 0 a --context
 * ("ctx-b"), bit 1 a namespace override, bit 2 a server override, bit 3
 * two files merged through $KUBECONFIG (the rest of the input is cut at the
 * first "\n---8<---\n": before it the first file, after it the second)
 * instead of one path. Nothing may crash or leak; what loads must be usable:
 * a source, a namespace, and an http(s) server without a trailing slash.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kube/kubeconfig.h"

static int mkfile(const uint8_t *p, size_t n, char *path, size_t cap)
{
	int fd = memfd_create("kubeconfig", MFD_CLOEXEC);
	size_t off = 0;

	if (fd < 0)
		return -1;
	while (off < n) {
		ssize_t w = write(fd, p + off, n - off);
		if (w <= 0) {
			close(fd);
			return -1;
		}
		off += (size_t)w;
	}
	snprintf(path, cap, "/proc/self/fd/%d", fd);
	return fd;
}

static void check(const kvs__kubeconf *kc, const char *server)
{
	size_t n;

	if (!kc->source || !kc->ns || !kc->ns[0])
		abort();
	if (!kc->server) {
		if (server)
			abort();
		return;
	}
	n = strlen(kc->server);
	if ((strncmp(kc->server, "http://", 7) != 0 && strncmp(kc->server, "https://", 8) != 0) ||
	    (n && kc->server[n - 1] == '/'))
		abort();
	if ((kc->cert_file || kc->cert_data) != (kc->key_file || kc->key_data))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char cut[] = "\n---8<---\n";
	const char *context, *ns, *server;
	const uint8_t *p, *second = NULL;
	size_t n, n2 = 0;
	char path1[64], path2[64], env[160];
	int fd1, fd2 = -1;
	kvs__kubeconf *kc = NULL;
	uint8_t sel;

	if (size < 1)
		return 0;
	sel = data[0];
	p = data + 1;
	n = size - 1;
	context = (sel & 1) ? "ctx-b" : NULL;
	ns = (sel & 2) ? "fuzz-ns" : NULL;
	server = (sel & 4) ? "https://override.example:6443/" : NULL;
	if (sel & 8) {
		const uint8_t *c = memmem(p, n, cut, sizeof(cut) - 1);
		if (c) {
			second = c + sizeof(cut) - 1;
			n2 = n - (size_t)(second - p);
			n = (size_t)(c - p);
		}
	}
	if ((fd1 = mkfile(p, n, path1, sizeof(path1))) < 0)
		return 0;
	if (second && (fd2 = mkfile(second, n2, path2, sizeof(path2))) < 0) {
		close(fd1);
		return 0;
	}
	if (sel & 8) {
		snprintf(env, sizeof(env), "%s%s%s", path1, second ? ":" : "", second ? path2 : "");
		setenv("KUBECONFIG", env, 1);
		if (kvs__kubeconf_load(&kc, NULL, context, ns, server) == 0)
			check(kc, server);
		else if (kc)
			abort();
		unsetenv("KUBECONFIG");
	} else if (kvs__kubeconf_load(&kc, path1, context, ns, server) == 0) {
		check(kc, server);
	} else if (kc) {
		abort();
	}
	kvs__kubeconf_free(kc);
	close(fd1);
	if (fd2 >= 0)
		close(fd2);
	return 0;
}
