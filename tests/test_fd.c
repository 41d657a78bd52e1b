/*
 * test_fd.c — suite "fd": kvs_put_fd and kvs_get_fd report the system's
 * reason when the file descriptor fails, and a failed put commits nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "support/fixture.h"

static kvs_store *open_mem(void)
{
	kvs_backend *b;
	kvs_store *s;
	cr_assert_eq(kvs_backend_mem(&b, NULL), 0);
	cr_assert_eq(kvs_open(&s, b, NULL), 0, "%s", kvs_error_last());
	return s;
}

/* read(2) of a directory fails with EISDIR: the detail says so. */
Test(fd, put_fd_of_a_directory_is_eio_with_the_system_reason)
{
	kvs_store *s = open_mem();
	int fd = open("/", O_RDONLY | O_DIRECTORY);
	char want[64];
	void *p = NULL;
	size_t n;

	cr_assert_geq(fd, 0);
	int rc = kvs_put_fd(NULL, s, "dir", fd, NULL);
	cr_assert_eq(rc, KVS_EIO, "got %s: %s", kvs_strerror(rc), kvs_error_last());
	snprintf(want, sizeof(want), "reading fd %d", fd);
	cr_assert(strstr(kvs_error_last(), want), "detail: %s", kvs_error_last());
	cr_assert(strstr(kvs_error_last(), strerror(EISDIR)), "detail without the reason (%s): %s",
	          strerror(EISDIR), kvs_error_last());
	cr_assert_eq(kvs_get(&p, &n, NULL, s, "dir", NULL), KVS_ENOTFOUND, "a failed put committed");
	close(fd);
	kvs_close(s);
}

/* write(2) to a descriptor open for reading fails with EBADF. */
Test(fd, get_fd_into_a_read_only_fd_is_eio_with_the_system_reason)
{
	kvs_store *s = open_mem();
	int fd = open("/dev/null", O_RDONLY);
	char want[64];

	cr_assert_geq(fd, 0);
	cr_assert_eq(kvs_put(NULL, s, "k", "hello", 5, NULL), 0);
	int rc = kvs_get_fd(NULL, s, "k", fd, NULL);
	cr_assert_eq(rc, KVS_EIO, "got %s: %s", kvs_strerror(rc), kvs_error_last());
	snprintf(want, sizeof(want), "to fd %d", fd);
	cr_assert(strstr(kvs_error_last(), want), "detail: %s", kvs_error_last());
	cr_assert(strstr(kvs_error_last(), strerror(EBADF)), "detail without the reason (%s): %s",
	          strerror(EBADF), kvs_error_last());
	close(fd);
	kvs_close(s);
}
