/*
 * test_completion.c — suite `completion`: `kvsplit completion bash` driven
 * the way bash drives it (COMP_WORDS / COMP_CWORD, then COMPREPLY), against
 * a kapi-server holding a few keys.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/fixture_kube.h"

static struct {
	fx_kapi *k;
	char dir[64];
	char bin[512];
	char kubeconfig[1024]; /* $KUBECONFIG: the server's, then one with more contexts */
} T;

static void setup(void)
{
	const char *b = getenv("KVS_BUILD");
	char tmpl[] = "/tmp/kvs-compl-XXXXXX", extra[128];
	kvs_backend *be;
	kvs_store *s;
	FILE *f;

	memset(&T, 0, sizeof(T));
	cr_assert_not_null(mkdtemp(tmpl));
	snprintf(T.dir, sizeof(T.dir), "%s", tmpl);
	snprintf(T.bin, sizeof(T.bin), "%s/kvsplit", b ? b : "build");
	cr_assert(access(T.bin, X_OK) == 0, "no %s (set KVS_BUILD)", T.bin);
	cr_assert_eq(fx_kapi_start(&T.k, 0, NULL), 0, "%s", kvs_error_last());
	cr_assert_eq(fx_kapi_backend(&be, T.k, NULL), 0, "%s", kvs_error_last());
	cr_assert_eq(kvs_open(&s, be, NULL), 0, "%s", kvs_error_last());
	const char *keys[] = { "app/one", "app/two", "other" };
	for (size_t i = 0; i < 3; i++)
		cr_assert_eq(kvs_put(NULL, s, keys[i], "x", 1, NULL), 0, "%s", kvs_error_last());
	kvs_close(s);
	snprintf(extra, sizeof(extra), "%s/more", T.dir);
	cr_assert_not_null(f = fopen(extra, "w"));
	fputs("contexts:\n- name: prod\n  context: {cluster: c, namespace: payments}\n"
	      "- name: staging\n  context: {cluster: c, namespace: qa}\n", f);
	cr_assert_eq(fclose(f), 0);
	snprintf(T.kubeconfig, sizeof(T.kubeconfig), "%s:%s", fx_kapi_kubeconfig(T.k), extra);
}

static void teardown(void)
{
	char cmd[128];

	fx_kapi_stop(T.k);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", T.dir);
	cr_expect_eq(system(cmd), 0);
}

TestSuite(completion, .init = setup, .fini = teardown, .timeout = 30);

/*
 * What bash would offer for the command line `words` (space-separated; the
 * last word is the one being completed, "" when the cursor follows a space),
 * one candidate a line.
 */
static char *complete(const char *words, int trailing_space)
{
	char script[4096], cmd[5000], out[600];
	FILE *p;
	char *buf = calloc(1, 65536);
	size_t n = 0, r;

	snprintf(out, sizeof(out), "%s/script", T.dir);
	snprintf(script, sizeof(script),
	         "source <('%s' completion bash) || exit 9\n"
	         "read -r -a w <<< '%s'\n"
	         "COMP_WORDS=('%s' \"${w[@]}\")\n"
	         "%s"
	         "COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))\n"
	         "_kvsplit_complete\n"
	         "[ ${#COMPREPLY[@]} -eq 0 ] || printf '%%s\\n' \"${COMPREPLY[@]}\"\n",
	         T.bin, words, T.bin, trailing_space ? "COMP_WORDS+=('')\n" : "");
	FILE *f = fopen(out, "w");
	cr_assert_not_null(f);
	fputs(script, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "cd '%s' && KUBECONFIG='%s' HOME='%s' bash '%s'", T.dir,
	         T.kubeconfig, T.dir, out);
	cr_assert_not_null(p = popen(cmd, "r"));
	while ((r = fread(buf + n, 1, 65535 - n, p)) > 0)
		n += r;
	cr_assert_eq(pclose(p), 0, "bash failed: %s", buf);
	return buf;
}

#define EXPECT_COMPLETION(words, space, want)                                          \
	do {                                                                               \
		char *got_ = complete(words, space);                                           \
		cr_expect_str_eq(got_, want, "completing \"%s%s\"", words, space ? " " : ""); \
		free(got_);                                                                    \
	} while (0)

Test(completion, commands)
{
	EXPECT_COMPLETION("g", 0, "gc\nget\n");
	EXPECT_COMPLETION("comp", 0, "completion\n");
	EXPECT_COMPLETION("completion", 1, "bash\nfish\nzsh\n");
}

Test(completion, flags_of_the_command)
{
	EXPECT_COMPLETION("get --to", 0, "--to-file\n--touch-window\n");
	/* --prefix is watch's: not offered for get */
	EXPECT_COMPLETION("get --pre", 0, "");
	EXPECT_COMPLETION("watch --pre", 0, "--prefix\n");
}

Test(completion, flag_values_from_the_kubeconfig)
{
	EXPECT_COMPLETION("get -o", 1, "json\nname\nwide\n");
	EXPECT_COMPLETION("ls --output w", 0, "wide\n");
	EXPECT_COMPLETION("ls --context", 1, "kapi\nprod\nstaging\n");
	EXPECT_COMPLETION("ls --context st", 0, "staging\n");
	EXPECT_COMPLETION("ls -n", 1, "default\nkvs-test\npayments\nqa\n");
}

Test(completion, keys_of_the_current_store)
{
	EXPECT_COMPLETION("get", 1, "app/one\napp/two\nother\n");
	EXPECT_COMPLETION("get app/", 0, "app/one\napp/two\n");
	EXPECT_COMPLETION("rm o", 0, "other\n");
	/* another store: no keys there */
	EXPECT_COMPLETION("get --store elsewhere", 1, "");
}

Test(completion, zsh_and_fish_scripts)
{
	FILE *p;
	char cmd[700], buf[4096];
	size_t n;

	snprintf(cmd, sizeof(cmd), "'%s' completion zsh", T.bin);
	cr_assert_not_null(p = popen(cmd, "r"));
	n = fread(buf, 1, sizeof(buf) - 1, p);
	buf[n] = 0;
	cr_assert_eq(pclose(p), 0);
	cr_expect(strstr(buf, "#compdef kvsplit") && strstr(buf, "__complete"), "%s", buf);
	snprintf(cmd, sizeof(cmd), "'%s' completion fish", T.bin);
	cr_assert_not_null(p = popen(cmd, "r"));
	n = fread(buf, 1, sizeof(buf) - 1, p);
	buf[n] = 0;
	cr_assert_eq(pclose(p), 0);
	cr_expect(strstr(buf, "complete -c kvsplit") && strstr(buf, "__complete"), "%s", buf);
	snprintf(cmd, sizeof(cmd), "'%s' completion tcsh 2>/dev/null", T.bin);
	cr_expect_eq(WEXITSTATUS(system(cmd)), 2);
}
