/*
 * outfile.c — files the CLI replaces atomically: `get --to-file`,
 * `get --version-file` and `watch --to-file`.
 *
 * The bytes go to a temporary beside the target (`.NAME.kvsplit-XXXXXX`, so
 * the rename stays on one file system), are flushed to disk, and the
 * temporary is renamed over the target only when everything verified: a
 * reader of the target sees the old file or the whole new one, never a
 * part. The temporary is created before any data is read, so a path that
 * cannot be written (missing folder, a folder, a parent that is a file, no
 * permission) fails at once, with the path and the system's reason, instead
 * of after the download. Temporaries are registered in cli_tmp_paths so a
 * second Ctrl-C (which exits at once) still removes them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

char cli_tmp_paths[CLI_TMP_SLOTS][4096];

/* "dir/" part of a path ("" for a bare name) and the name after it. */
static void split_path(const char *path, size_t *dirlen, const char **base)
{
	const char *slash = strrchr(path, '/');

	*dirlen = slash ? (size_t)(slash - path) + 1 : 0;
	*base = slash ? slash + 1 : path;
}

/* One line: what failed, which path, why. */
static void report(const char *what, const char *path, int err, const char *why)
{
	if (why)
		cli_err("%s: cannot write %s: %s (%s)", what, cli_key(path), strerror(err), why);
	else
		cli_err("%s: cannot write %s: %s", what, cli_key(path), strerror(err));
}

int outfile_open(struct outfile *f, const char *what, const char *target)
{
	struct stat sb;
	size_t dirlen;
	const char *base;
	int slot = -1;

	memset(f, 0, sizeof(*f));
	f->fd = -1;
	f->slot = -1;
	f->target = target;
	for (int i = 0; i < CLI_TMP_SLOTS && slot < 0; i++)
		if (!cli_tmp_paths[i][0])
			slot = i;
	if (slot < 0) {
		cli_err("%s: internal error: too many temporary files", what);
		return -1;
	}
	if (!*target) {
		cli_err("%s: the file name is empty", what);
		return -1;
	}
	split_path(target, &dirlen, &base);
	if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0 ||
	    (stat(target, &sb) == 0 && S_ISDIR(sb.st_mode))) {
		report(what, target, EISDIR, NULL);
		return -1;
	}
	if (stat(target, &sb) == 0 && S_ISREG(sb.st_mode)) {
		f->mode = sb.st_mode & 07777;
	} else {
		mode_t um = umask(0);
		umask(um);
		f->mode = 0666 & ~um;
	}
	char *tmp = cli_tmp_paths[slot];
	int n = snprintf(tmp, sizeof(cli_tmp_paths[slot]), "%.*s.%s.kvsplit-XXXXXX", (int)dirlen,
	                 target, base);
	if (n < 0 || (size_t)n >= sizeof(cli_tmp_paths[slot])) {
		tmp[0] = '\0';
		report(what, target, ENAMETOOLONG, NULL);
		return -1;
	}
	f->fd = mkostemp(tmp, O_CLOEXEC);
	if (f->fd < 0) {
		int e = errno;
		tmp[0] = '\0';
		/* name the folder when it is the folder that is wrong */
		if (e == ENOENT || e == ENOTDIR || e == EACCES || e == EROFS) {
			char dir[4096], why[4200];
			snprintf(dir, sizeof(dir), "%.*s", (int)(dirlen ? dirlen : 1),
			         dirlen ? target : ".");
			snprintf(why, sizeof(why), "cannot create a file in folder %s", cli_key(dir));
			report(what, target, e, why);
		} else {
			report(what, target, e, NULL);
		}
		return -1;
	}
	f->slot = slot;
	return 0;
}

int outfile_write(struct outfile *f, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t w = write(f->fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int outfile_commit(struct outfile *f, const char *what)
{
	char *tmp = cli_tmp_paths[f->slot];

	if (fchmod(f->fd, f->mode) < 0 || fsync(f->fd) < 0) {
		int e = errno;
		report(what, f->target, e, NULL);
		outfile_abort(f);
		return -1;
	}
	int fd = f->fd;
	f->fd = -1;
	if (close(fd) < 0 || rename(tmp, f->target) < 0) {
		int e = errno;
		report(what, f->target, e, NULL);
		outfile_abort(f);
		return -1;
	}
	tmp[0] = '\0';
	f->slot = -1;
	return 0;
}

void outfile_abort(struct outfile *f)
{
	if (f->fd >= 0) {
		close(f->fd);
		f->fd = -1;
	}
	if (f->slot >= 0) {
		unlink(cli_tmp_paths[f->slot]);
		cli_tmp_paths[f->slot][0] = '\0';
		f->slot = -1;
	}
}
