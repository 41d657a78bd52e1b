/*
 * main.c — the test binaries' entry point.
 *
 * Criterion runs each test in a forked worker; a worker that leaks gets a
 * LeakSanitizer report at its exit, which Criterion does not count as a
 * failure, so tests/run.sh fails the run on any sanitizer report. The runner
 * process itself keeps a few allocations of Criterion's own until exit: it
 * leaves with _exit() so that those are not reported as ours.
 */
#include <stdio.h>
#include <unistd.h>

#include <criterion/criterion.h>

int main(int argc, char *argv[])
{
	struct criterion_test_set *tests = criterion_initialize();
	int result = 0;

	if (criterion_handle_args(argc, argv, true))
		result = !criterion_run_all_tests(tests);
	criterion_finalize(tests);
	fflush(stdout);
	fflush(stderr);
	_exit(result);
}
