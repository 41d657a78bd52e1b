/*
 * tests/stress/proc.h — what the process-level stress drivers share: a
 * scratch folder, the API test server (build/kapi-server) in a child
 * process, the CLI (build/kvsplit) run as a child that can be killed at an
 * instant, and the server's control endpoints.
 *
 * These drivers are programs, not Criterion tests: they run the binaries a
 * user runs and kill them with SIGKILL, as a crash would.
 */
#ifndef KVS_STRESS_PROC_H
#define KVS_STRESS_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SP_PATH 512

typedef struct sp_env {
	char dir[SP_PATH];        /* scratch folder, removed on success */
	char bin[SP_PATH];        /* $KVS_BUILD/kvsplit */
	char kapi[SP_PATH];       /* $KVS_BUILD/kapi-server */
	char kubeconfig[SP_PATH];
	char url[64];
	pid_t server;
	int verbose;
} sp_env;

/* Fatal error of the driver itself (not a finding): prints and exits 2. */
void sp_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Scratch folder, binaries from $KVS_BUILD (default build/). */
void sp_init(sp_env *e, const char *tag);
/* Start kapi-server (namespace kvs-test) with extra args (NULL-terminated). */
void sp_server_start(sp_env *e, const char *const *extra);
void sp_server_stop(sp_env *e);
/* POST /kapi/faults with json; dies on failure. */
void sp_faults(sp_env *e, const char *json);

/* Delete one segment ConfigMap of the store by hand (a sabotage for self-tests). */
void sp_delete_one_segment(sp_env *e);

/* Path of `name` inside the scratch folder. */
void sp_path(const sp_env *e, char out[SP_PATH], const char *name);

/*
 * Start the CLI with args (NULL-terminated) against the server; its stdout
 * and stderr go to TAG.out / TAG.err in the scratch folder.
 */
pid_t sp_cli_start(const sp_env *e, const char *tag, const char *const *args);
/*
 * Wait for pid; if it is still running after kill_after_us (< 0: never),
 * SIGKILL it. Returns the wait status; *killed says whether our SIGKILL
 * ended it. *elapsed_us (may be NULL) gets the run time.
 */
int sp_wait(pid_t pid, int64_t kill_after_us, int *killed, int64_t *elapsed_us);
/* Run to completion; returns the exit code (or 128+signal). */
int sp_cli_run(const sp_env *e, const char *tag, const char *const *args);

/* Whole file, malloc'd, NUL-terminated (NULL if missing). */
char *sp_slurp(const char *path, size_t *len);
int sp_files_equal(const char *a, const char *b);
int64_t sp_now_us(void);

/* xorshift64*: reproducible from --seed */
uint64_t sp_rand(uint64_t *s);
double sp_unit(uint64_t *s);

#endif
