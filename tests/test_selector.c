/*
 * test_selector.c — suites `selector` and `validate`: the label and field
 * selectors and the validators that the in-memory backend and the API test
 * server share (kube/selector.c, kube/validate.c), with the API server's
 * grammar and messages.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "kube/selector.h"
#include "kube/validate.h"

static int sel_matches(const char *text, const kvs_kv *kv, size_t n)
{
	kvs__selector *s = NULL;
	char msg[512];
	int rc = kvs__label_selector_parse(&s, text, msg, sizeof(msg));
	cr_assert_eq(rc, 0, "\"%s\": %s", text, msg);
	int m = kvs__selector_match_kv(s, kv, n);
	kvs__selector_free(s);
	return m;
}

static void parse_fails(const char *text, const char *want)
{
	kvs__selector *s = (kvs__selector *)1;
	char msg[512];
	int rc = kvs__label_selector_parse(&s, text, msg, sizeof(msg));
	cr_expect_eq(rc, KVS_EINVAL, "\"%s\" accepted", text);
	cr_expect_null(s);
	cr_expect_str_eq(msg, want, "\"%s\"", text);
}

Test(selector, requirements_match_as_the_api_server_matches)
{
	kvs_kv l[] = { { (char *)"app", (char *)"web" }, { (char *)"n", (char *)"5" },
	               { (char *)"x.io/t", (char *)"" } };
	cr_expect(sel_matches("app=web", l, 3));
	cr_expect(sel_matches("app==web,n", l, 3));
	cr_expect_not(sel_matches("app!=web", l, 3));
	cr_expect(sel_matches("missing!=web", l, 3), "!= matches a missing label");
	cr_expect(sel_matches("app in (db, web)", l, 3));
	cr_expect_not(sel_matches("app notin (web)", l, 3));
	cr_expect(sel_matches("missing notin (web)", l, 3), "notin matches a missing label");
	cr_expect_not(sel_matches("missing in (web)", l, 3));
	cr_expect(sel_matches("!missing", l, 3));
	cr_expect_not(sel_matches("!app", l, 3));
	cr_expect(sel_matches("n>4,n<6", l, 3));
	cr_expect_not(sel_matches("app>4", l, 3), "gt on a non-integer label");
	cr_expect(sel_matches("x.io/t=", l, 3), "empty value");
	cr_expect(sel_matches("x.io/t in ()", l, 3), "() is the set {\"\"}");
	cr_expect(sel_matches("x.io/t in (a,,b)", l, 3), "an empty value inside a set");
	cr_expect(sel_matches("in in (in),app notin (notin)", (kvs_kv[]){ { (char *)"in",
	          (char *)"in" }, { (char *)"app", (char *)"x" } }, 2), "in/notin as words");
	cr_expect(sel_matches("", l, 3));
	cr_expect(sel_matches(" \t", l, 3));
}

Test(selector, errors_carry_the_api_server_messages)
{
	parse_fails("a=b=c", "found '=', expected: ',' or 'end of string'");
	parse_fails("a,", "found '', expected: identifier after ','");
	parse_fails("=b", "found '=', expected: !, identifier, or 'end of string'");
	parse_fails("a in b", "unable to parse requirement: found 'b' expected: '('");
	parse_fails("a in (b", "unable to parse requirement: found '', expected: ',' or ')'");
	parse_fails("a (b)", "unable to parse requirement: found '(', expected: in, notin, =, ==, "
	                     "!=, gt, lt");
	parse_fails("a>x", "unable to parse requirement: values[0]: Invalid value: \"x\": for "
	                   "'Gt', 'Lt' operators, the value must be an integer");
	parse_fails("a/b/c", "unable to parse requirement: : Invalid value: \"a/b/c\": a qualified "
	                     "name must consist of alphanumeric characters, '-', '_' or '.', and "
	                     "must start and end with an alphanumeric character (e.g. 'MyName',  or "
	                     "'my.name',  or '123-abc', regex used for validation is "
	                     "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS "
	                     "subdomain prefix and '/' (e.g. 'example.com/MyName')");
	parse_fails("a=-x", "unable to parse requirement: values[0][a]: Invalid value: \"-x\": a "
	                    "valid label must be an empty string or consist of alphanumeric "
	                    "characters, '-', '_' or '.', and must start and end with an "
	                    "alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
	                    "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?"
	                    "[A-Za-z0-9])?')");
}

Test(selector, field_selectors_take_name_and_namespace_with_escapes)
{
	kvs__selector *s = NULL;
	char msg[512];
	cr_assert_eq(kvs__field_selector_parse(&s, "metadata.name=a,metadata.namespace!=x", msg,
	                                       sizeof(msg)), 0, "%s", msg);
	cr_expect(kvs__field_selector_match(s, "default", "a"));
	cr_expect_not(kvs__field_selector_match(s, "x", "a"));
	cr_expect_not(kvs__field_selector_match(s, "default", "b"));
	kvs__selector_free(s);
	cr_assert_eq(kvs__field_selector_parse(&s, "metadata.name==a\\,b", msg, sizeof(msg)), 0,
	             "%s", msg);
	cr_expect(kvs__field_selector_match(s, "default", "a,b"), "escaped comma");
	kvs__selector_free(s);
	cr_expect_eq(kvs__field_selector_parse(&s, "spec.x=1", msg, sizeof(msg)), KVS_EINVAL);
	cr_expect_str_eq(msg, "field label not supported: spec.x");
	cr_expect_eq(kvs__field_selector_parse(&s, "metadata.name", msg, sizeof(msg)), KVS_EINVAL);
	cr_expect_str_eq(msg, "invalid selector: 'metadata.name'; can't understand 'metadata.name'");
	cr_expect_eq(kvs__field_selector_parse(&s, "metadata.name=a=b", msg, sizeof(msg)),
	             KVS_EINVAL);
	cr_expect_str_eq(msg, "invalid field selector: unescaped character in value: =");
	cr_expect_eq(kvs__field_selector_parse(&s, "", msg, sizeof(msg)), 0);
	cr_expect(kvs__selector_empty(s));
}

/* ------------------------------------------------------------------------ */

static size_t check(size_t (*fn)(kvs__verrs *, const char *), const char *s, kvs__verrs *e)
{
	memset(e, 0, sizeof(*e));
	return fn(e, s);
}

Test(validate, names_follow_rfc_1123)
{
	kvs__verrs e;
	cr_expect_eq(check(kvs__is_dns1123_subdomain, "kvs.store.i-a-2fb", &e), 0);
	cr_expect_eq(check(kvs__is_dns1123_subdomain, "a..b", &e), 1);
	cr_expect_eq(check(kvs__is_dns1123_subdomain, "-a", &e), 1);
	cr_expect_eq(check(kvs__is_dns1123_subdomain, "Upper", &e), 1);
	cr_expect(strstr(e.msg[0], "a lowercase RFC 1123 subdomain must consist of") == e.msg[0]);
	char longname[300];
	memset(longname, 'a', 254);
	longname[254] = '\0';
	cr_expect_eq(check(kvs__is_dns1123_subdomain, longname, &e), 1);
	cr_expect_str_eq(e.msg[0], "must be no more than 253 characters");
	cr_expect_eq(check(kvs__is_dns1123_label, "a.b", &e), 1, "a label has no dots");
	cr_expect(strstr(e.msg[0], "a lowercase RFC 1123 label must consist of") == e.msg[0]);
	cr_expect_eq(check(kvs__is_dns1123_label, "default", &e), 0);
}

Test(validate, label_keys_values_and_config_keys)
{
	kvs__verrs e;
	cr_expect_eq(check(kvs__is_qualified_name, "kvsplit.io/store", &e), 0);
	cr_expect_eq(check(kvs__is_qualified_name, "App_1.x", &e), 0);
	cr_expect_eq(check(kvs__is_qualified_name, "/x", &e), 1);
	cr_expect_str_eq(e.msg[0], "prefix part must be non-empty");
	cr_expect_eq(check(kvs__is_qualified_name, "Example.com/x", &e), 1);
	cr_expect(strstr(e.msg[0], "prefix part a lowercase RFC 1123 subdomain") == e.msg[0]);
	cr_expect_eq(check(kvs__is_qualified_name, "x/", &e), 2);
	cr_expect_str_eq(e.msg[0], "name part must be non-empty");
	cr_expect_eq(check(kvs__is_label_value, "", &e), 0);
	cr_expect_eq(check(kvs__is_label_value, "a_b.c-d", &e), 0);
	cr_expect_eq(check(kvs__is_label_value, "a b", &e), 1);
	cr_expect_eq(check(kvs__is_config_key, "manifest", &e), 0);
	cr_expect_eq(check(kvs__is_config_key, "..x", &e), 1);
	cr_expect_str_eq(e.msg[0], "must not start with '..'");
	cr_expect_eq(check(kvs__is_config_key, "a/b", &e), 1);
	cr_expect(strstr(e.msg[0], "a valid config key must consist of") == e.msg[0]);
}

typedef struct collect {
	char s[4][600];
	int n;
} collect;

static void on_err(void *ctx, const kvs__field_err *e)
{
	collect *c = ctx;
	if (c->n < 4)
		kvs__ferr_format(c->s[c->n], sizeof(c->s[0]), e, 1);
	c->n++;
}

Test(validate, annotation_keys_fold_case_and_the_total_is_capped)
{
	static char big[KVS__ANNOTATIONS_MAX];
	memset(big, 'v', sizeof(big) - 1);
	kvs_kv a[] = { { (char *)"Example.COM/Key", (char *)"x" }, { (char *)"k", big } };
	collect c = { .n = 0 };
	kvs__validate_annotations(a, 1, on_err, &c);
	cr_expect_eq(c.n, 0, "an upper-case prefix refused: %s", c.s[0]);
	kvs__validate_annotations(a, 2, on_err, &c);
	cr_expect_eq(c.n, 1);
	cr_expect_str_eq(c.s[0], "metadata.annotations: Too long: must have at most 262144 bytes");
	collect d = { .n = 0 };
	kvs__validate_config_key("binaryData", "a b", on_err, &d);
	cr_assert_eq(d.n, 1);
	cr_expect(strstr(d.s[0], "binaryData[a b]: Invalid value: \"a b\": a valid config key") ==
	          d.s[0], "%s", d.s[0]);
}
