/*
 * test_controller_echo.c — suite "controller_echo": build/shard-echo
 * processes against the API test server.
 *
 *  - group: 3 members over 2,000 ConfigMaps (unlabelled at first, so the
 *    members stamp them): kill -9 one, and its objects are annotated by
 *    another owner within lease duration + 2 s; partition one (its API
 *    traffic goes through a TCP proxy the test cuts), and it stops acting
 *    before its Lease can run out while the others take its share; a rolling
 *    restart of every member (SIGTERM, exit 0, start again) moves nothing;
 *    the per-reconcile logs of every life of every member show no object
 *    reconciled by two members in overlapping terms, epochs increasing.
 *  - metrics: the endpoint parsed by Debian's python3-prometheus-client.
 *
 * Lease duration 3 s (renew deadline 2 s, retry 0.4 s), resync 1 s, so
 * every member acts on every object it owns about once a second.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "kvsplit.h"
#include "kvsplit/kube.h"
#include "support/fixture_kube.h"

#define NOBJ 2000
#define LEASE_S 3.0
#define RENEW_S 2.0
#define MAXM 5
#define MAXLIVES 8

static fx_kapi *srv;
static kvs_kube *kube;
static char dir[200];

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (time_t)s) * 1e9) };
	nanosleep(&ts, NULL);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 1 << 16, n = 0;
	char *p = malloc(cap);
	size_t got;
	while (p && (got = fread(p + n, 1, cap - n - 1, f)) > 0) {
		n += got;
		if (cap - n < 2) {
			char *np = realloc(p, cap *= 2);
			if (!np) {
				free(p);
				p = NULL;
			}
			p = np;
		}
	}
	fclose(f);
	if (p)
		p[n] = '\0';
	if (len)
		*len = n;
	return p;
}

/* ---- a TCP proxy the test can cut (a partition of one member) ----------- */

typedef struct proxy {
	int lfd;
	unsigned port, up_port;
	pthread_t th;
	pthread_mutex_t mu;
	int cut, stop;
	int fds[1024];
	int nfds;
} proxy;

static void px_track(proxy *p, int fd, int add)
{
	pthread_mutex_lock(&p->mu);
	if (add && p->nfds < 1024) {
		p->fds[p->nfds++] = fd;
	} else if (!add) {
		for (int i = 0; i < p->nfds; i++)
			if (p->fds[i] == fd) {
				p->fds[i] = p->fds[--p->nfds];
				break;
			}
	}
	pthread_mutex_unlock(&p->mu);
}

typedef struct px_pair {
	proxy *p;
	int a, b;
} px_pair;

static void *px_pipe(void *arg)
{
	px_pair pr = *(px_pair *)arg;
	char buf[65536];
	free(arg);
	struct pollfd fds[2] = { { pr.a, POLLIN, 0 }, { pr.b, POLLIN, 0 } };
	for (;;) {
		if (poll(fds, 2, 200) < 0 && errno != EINTR)
			break;
		int done = 0;
		for (int i = 0; i < 2 && !done; i++) {
			if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t n = read(fds[i].fd, buf, sizeof(buf));
			if (n <= 0) {
				done = 1;
				break;
			}
			for (ssize_t off = 0; off < n;) {
				ssize_t w = write(fds[1 - i].fd, buf + off, (size_t)(n - off));
				if (w <= 0) {
					done = 1;
					break;
				}
				off += w;
			}
		}
		if (done)
			break;
		pthread_mutex_lock(&pr.p->mu);
		int stop = pr.p->stop;
		pthread_mutex_unlock(&pr.p->mu);
		if (stop)
			break;
	}
	px_track(pr.p, pr.a, 0);
	px_track(pr.p, pr.b, 0);
	close(pr.a);
	close(pr.b);
	return NULL;
}

static void *px_accept(void *arg)
{
	proxy *p = arg;
	for (;;) {
		struct pollfd pf = { p->lfd, POLLIN, 0 };
		pthread_mutex_lock(&p->mu);
		int stop = p->stop;
		pthread_mutex_unlock(&p->mu);
		if (stop)
			break;
		if (poll(&pf, 1, 100) <= 0)
			continue;
		int c = accept(p->lfd, NULL, NULL);
		if (c < 0)
			continue;
		pthread_mutex_lock(&p->mu);
		int cut = p->cut;
		pthread_mutex_unlock(&p->mu);
		if (cut) {
			close(c);
			continue;
		}
		int u = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in sa = { 0 };
		sa.sin_family = AF_INET;
		sa.sin_port = htons((uint16_t)p->up_port);
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (u < 0 || connect(u, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
			close(c);
			if (u >= 0)
				close(u);
			continue;
		}
		px_pair *pr = malloc(sizeof(*pr));
		pr->p = p, pr->a = c, pr->b = u;
		px_track(p, c, 1);
		px_track(p, u, 1);
		pthread_t t;
		pthread_create(&t, NULL, px_pipe, pr);
		pthread_detach(t);
	}
	return NULL;
}

static void px_start(proxy *p, unsigned up_port)
{
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->mu, NULL);
	p->up_port = up_port;
	p->lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { 0 };
	socklen_t sl = sizeof(sa);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(p->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(p->lfd, 128), 0);
	getsockname(p->lfd, (struct sockaddr *)&sa, &sl);
	p->port = ntohs(sa.sin_port);
	pthread_create(&p->th, NULL, px_accept, p);
}

/* Cut: every open connection is reset, new ones are closed at once. */
static void px_cut(proxy *p, int cut)
{
	pthread_mutex_lock(&p->mu);
	p->cut = cut;
	if (cut)
		for (int i = 0; i < p->nfds; i++)
			shutdown(p->fds[i], SHUT_RDWR);
	pthread_mutex_unlock(&p->mu);
}

/* ---- members ------------------------------------------------------------ */

typedef struct member {
	char id[8];
	pid_t pid;
	int lives;
	char kubeconfig[300];
	char log[MAXLIVES][300];
} member;

static member M[MAXM];
static unsigned nm;

static void start_member(member *m, const char *const *extra)
{
	cr_assert(m->lives < MAXLIVES);
	char *log = m->log[m->lives++], id[8];
	char exe[PATH_MAX];
	const char *b = getenv("KVS_BUILD");
	snprintf(exe, sizeof(exe), "%s/shard-echo", b && *b ? b : "build");
	memcpy(id, m->id, sizeof(id));
	snprintf(log, sizeof(m->log[0]), "%s/%s.%d.log", dir, id, m->lives);
	const char *argv[32] = { exe, "--kubeconfig", m->kubeconfig, "--identity", m->id,
		                 "--lease-duration", "3s", "--resync", "1s", "--qps", "400" };
	int n = 11;
	for (int i = 0; extra && extra[i] && n < 30; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0)
			_exit(126);
		dup2(fd, 1);
		dup2(fd, 2);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execv(exe, (char *const *)argv);
		_exit(127);
	}
	m->pid = pid;
}

static int stop_member(member *m, int sig)
{
	int st = 0, code;
	kill(m->pid, sig);
	while (waitpid(m->pid, &st, 0) < 0 && errno == EINTR)
		;
	m->pid = 0;
	code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	if (code != 0 && sig != SIGKILL && m->lives > 0) {
		/* the member's own words (a sanitizer report goes there too) */
		char cmd[PATH_MAX + 64];
		fprintf(stderr, "controller_echo: %s exited %d; the end of its log:\n", m->id, code);
		snprintf(cmd, sizeof(cmd), "tail -n 40 '%s' >&2", m->log[m->lives - 1]);
		if (system(cmd) != 0) {
			/* best effort */
		}
	}
	return code;
}

static void kill_all(void)
{
	for (unsigned i = 0; i < nm; i++)
		if (M[i].pid > 0) {
			kill(M[i].pid, SIGKILL);
			waitpid(M[i].pid, NULL, 0);
			M[i].pid = 0;
		}
}

static void setup(void)
{
	kvs_kube_options ko = KVS_KUBE_OPTIONS_INIT;
	static const char *const extra[] = { "--history", "200000", NULL };
	cr_assert_eq(fx_kapi_start(&srv, 0, extra), 0, "%s", kvs_error_last());
	ko.kubeconfig = fx_kapi_kubeconfig(srv);
	ko.concurrency = 16;
	cr_assert_eq(kvs_kube_open(&kube, &ko), 0, "%s", kvs_error_last());
	snprintf(dir, sizeof(dir), "/tmp/kvs-echo-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	nm = 0;
}

static void teardown(void)
{
	kill_all();
	kvs_kube_free(kube);
	fx_kapi_stop(srv);
	if (!getenv("KVS_KEEP")) {
		char cmd[PATH_MAX + 16];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0) {
			/* best effort */
		}
	}
}

TestSuite(controller_echo, .init = setup, .fini = teardown, .timeout = 150);

static void add_member(const char *id, const char *kubeconfig)
{
	member *m = &M[nm++];
	memset(m, 0, sizeof(*m));
	snprintf(m->id, sizeof(m->id), "%s", id);
	snprintf(m->kubeconfig, sizeof(m->kubeconfig), "%s", kubeconfig);
}

/* The fixture's kubeconfig with the server URL replaced. */
static void kubeconfig_via(char *out, size_t cap, unsigned port)
{
	char *kc = slurp(fx_kapi_kubeconfig(srv), NULL), url[64];
	const char *old = fx_kapi_url(srv);
	cr_assert_not_null(kc);
	char *at = strstr(kc, old);
	cr_assert_not_null(at);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", port);
	snprintf(out, cap, "%s/kubeconfig-%u", dir, port);
	FILE *f = fopen(out, "w");
	cr_assert_not_null(f);
	fwrite(kc, 1, (size_t)(at - kc), f);
	fputs(url, f);
	fputs(at + strlen(old), f);
	fclose(f);
	free(kc);
}

static void make_objects(unsigned n)
{
	kvs_kube_request rq[200];
	char body[200][256];
	for (unsigned base = 0; base < n; base += 200) {
		unsigned k = n - base < 200 ? n - base : 200;
		for (unsigned i = 0; i < k; i++) {
			kvs_kube_request r = KVS_KUBE_REQUEST_INIT;
			snprintf(body[i], sizeof(body[i]),
			         "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
			         "\"cm-%04u\",\"labels\":{\"demo\":\"shard-echo\"}},\"data\":{\"k\":\"v\"}}",
			         base + i);
			r.verb = KVS_KUBE_VERB_CREATE;
			r.resource = &kvs_kube_configmaps;
			r.body = body[i];
			r.body_len = strlen(body[i]);
			rq[i] = r;
		}
		cr_assert_eq(kvs_kube_run(kube, rq, k), 0, "%s", kvs_error_last());
		for (unsigned i = 0; i < k; i++) {
			cr_assert_eq(rq[i].result, 0, "%s", rq[i].detail);
			kvs_kube_request_clear(&rq[i]);
		}
	}
}

/* Owner (index into M, -1 none) and epoch of every object, from the server. */
typedef struct owners {
	int who[NOBJ];
	unsigned long long epoch[NOBJ];
	unsigned count[MAXM];
	unsigned none, seen;
} owners;

static void read_owners(owners *o, unsigned n)
{
	kvs_kube_list_options lo = KVS_KUBE_LIST_OPTIONS_INIT;
	char *cont = NULL;
	memset(o, 0, sizeof(*o));
	for (unsigned i = 0; i < n; i++)
		o->who[i] = -1;
	lo.label_selector = "demo=shard-echo";
	lo.limit = 1000;
	lo.metadata_only = 1;
	do {
		kvs_kube_page *p = NULL;
		lo.continue_token = cont;
		cr_assert_eq(kvs_kube_list(&p, kube, &kvs_kube_configmaps, NULL, &lo, NULL), 0, "%s",
		             kvs_error_last());
		free(cont);
		cont = p->continue_token ? strdup(p->continue_token) : NULL;
		const cJSON *it;
		cJSON_ArrayForEach(it, p->items) {
			const cJSON *md = cJSON_GetObjectItem(it, "metadata");
			const cJSON *nm_ = cJSON_GetObjectItem(md, "name");
			const cJSON *an = cJSON_GetObjectItem(md, "annotations");
			const cJSON *ow = cJSON_GetObjectItem(an, "shard-echo/owner");
			const cJSON *ep = cJSON_GetObjectItem(an, "shard-echo/epoch");
			unsigned idx = (unsigned)atoi(nm_->valuestring + 3);
			if (idx >= n)
				continue;
			o->seen++;
			if (cJSON_IsString(ow))
				for (unsigned m = 0; m < nm; m++)
					if (strcmp(ow->valuestring, M[m].id) == 0)
						o->who[idx] = (int)m;
			o->epoch[idx] = cJSON_IsString(ep) ? strtoull(ep->valuestring, NULL, 10) : 0;
		}
		kvs_kube_page_free(p);
	} while (cont);
	for (unsigned i = 0; i < n; i++) {
		if (o->who[i] < 0)
			o->none++;
		else
			o->count[o->who[i]]++;
	}
}

/* Wait until every object is owned, by members of `live` (bit mask) only,
 * each of them owning some, and nothing changes for `quiet` seconds.
 * Returns the time the condition first held. */
static double wait_owned(unsigned n, unsigned live, double timeout, double quiet, owners *o,
                         const char *what)
{
	double t0 = now_s(), first = 0;
	owners prev;
	int have_prev = 0;
	while (now_s() - t0 < timeout) {
		read_owners(o, n);
		int ok = o->none == 0 && o->seen == n;
		for (unsigned m = 0; m < nm && ok; m++)
			ok = (live >> m & 1) ? o->count[m] > 0 : o->count[m] == 0;
		if (ok && !first)
			first = now_s();
		if (!ok) {
			first = 0;
			have_prev = 0;
		} else if (have_prev && memcmp(prev.who, o->who, sizeof(o->who)) == 0 &&
		           now_s() - first >= quiet) {
			return first;
		}
		if (ok && !have_prev) {
			prev = *o;
			have_prev = 1;
		} else if (ok && memcmp(prev.who, o->who, sizeof(o->who)) != 0) {
			prev = *o;
			first = now_s();
		}
		sleep_s(0.1);
	}
	cr_assert_fail("%s: not owned within %.0f s (unowned %u, seen %u, counts %u %u %u)", what,
	               timeout, o->none, o->seen, o->count[0], o->count[1], o->count[2]);
	return 0;
}

/* ---- the per-reconcile logs -------------------------------------------- */

typedef struct rec {
	int member;
	unsigned obj;
	unsigned long long epoch;
	double start, end;
} rec;

static int field(const char *line, const char *key, char *out, size_t cap)
{
	char pat[64];
	snprintf(pat, sizeof(pat), " %s=", key);
	const char *p = strstr(line, pat);
	if (!p)
		return 0;
	p += strlen(pat);
	size_t n = strcspn(p, " \n");
	if (n >= cap)
		return 0;
	memcpy(out, p, n);
	out[n] = '\0';
	return 1;
}

static rec *read_logs(size_t *nrec)
{
	size_t cap = 1 << 16, n = 0;
	rec *r = malloc(cap * sizeof(*r));
	for (unsigned m = 0; m < nm; m++)
		for (int l = 0; l < M[m].lives; l++) {
			char *txt = slurp(M[m].log[l], NULL);
			cr_assert_not_null(txt);
			for (char *line = strtok(txt, "\n"); line; line = strtok(NULL, "\n")) {
				char obj[300], ep[32], st[32], dur[32];
				if (!strstr(line, " event=reconcile ") || !field(line, "object", obj, sizeof(obj)) ||
				    !field(line, "epoch", ep, sizeof(ep)) || !field(line, "start", st, sizeof(st)) ||
				    !field(line, "dur_us", dur, sizeof(dur)))
					continue;
				const char *nmp = strstr(obj, "/cm-");
				if (!nmp)
					continue;
				if (n == cap)
					r = realloc(r, (cap *= 2) * sizeof(*r));
				r[n].member = (int)m;
				r[n].obj = (unsigned)atoi(nmp + 4);
				r[n].epoch = strtoull(ep, NULL, 10);
				r[n].start = strtod(st, NULL);
				r[n].end = r[n].start + strtod(dur, NULL) / 1e6;
				n++;
			}
			free(txt);
		}
	*nrec = n;
	return r;
}

static int by_obj_member_epoch(const void *a, const void *b)
{
	const rec *x = a, *y = b;
	if (x->obj != y->obj)
		return x->obj < y->obj ? -1 : 1;
	if (x->member != y->member)
		return x->member - y->member;
	if (x->epoch != y->epoch)
		return x->epoch < y->epoch ? -1 : 1;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* A term: one member acting on one object under one epoch, [start, end]. */
typedef struct term {
	int member;
	unsigned long long epoch;
	double start, end;
} term;

static int by_start(const void *a, const void *b)
{
	const term *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* No object reconciled by two members in overlapping terms; later terms
 * carry higher epochs. Returns the number of terms checked. */
static size_t check_terms(rec *r, size_t n)
{
	qsort(r, n, sizeof(*r), by_obj_member_epoch);
	term *t = malloc((n + 1) * sizeof(*t));
	size_t checked = 0;
	for (size_t i = 0; i < n;) {
		size_t j = i, nt = 0;
		while (j < n && r[j].obj == r[i].obj) {
			size_t k = j;
			term x = { r[j].member, r[j].epoch, r[j].start, r[j].end };
			while (k < n && r[k].obj == r[j].obj && r[k].member == r[j].member &&
			       r[k].epoch == r[j].epoch) {
				if (r[k].end > x.end)
					x.end = r[k].end;
				k++;
			}
			t[nt++] = x;
			j = k;
		}
		qsort(t, nt, sizeof(*t), by_start);
		for (size_t a = 0; a < nt; a++)
			for (size_t b = a + 1; b < nt; b++) {
				if (t[a].member == t[b].member)
					continue;
				cr_assert(t[a].end < t[b].start,
				          "cm-%04u: %s epoch %llu [%.3f, %.3f] overlaps %s epoch %llu [%.3f, %.3f]",
				          r[i].obj, M[t[a].member].id, t[a].epoch, t[a].start, t[a].end,
				          M[t[b].member].id, t[b].epoch, t[b].start, t[b].end);
				cr_assert(t[a].epoch < t[b].epoch,
				          "cm-%04u: %s epoch %llu then %s epoch %llu", r[i].obj,
				          M[t[a].member].id, t[a].epoch, M[t[b].member].id, t[b].epoch);
			}
		checked += nt;
		i = j;
	}
	free(t);
	return checked;
}

/* Last reconcile start of member m, any life, in [from, to). */
static double last_action(const rec *r, size_t n, int m, double from)
{
	double last = 0;
	for (size_t i = 0; i < n; i++)
		if (r[i].member == m && r[i].start >= from && r[i].start > last)
			last = r[i].start;
	return last;
}

/* Wait for a fresh member's log to show it holds shards. */
static void wait_holding(member *m, double timeout)
{
	double t0 = now_s();
	while (now_s() - t0 < timeout) {
		char *txt = slurp(m->log[m->lives - 1], NULL);
		int ok = txt && strstr(txt, " event=shards ") && !strstr(strstr(txt, " event=shards "), "held=0 ");
		free(txt);
		if (ok)
			return;
		sleep_s(0.05);
	}
	cr_assert_fail("%s did not take its shards back", m->id);
}

Test(controller_echo, kill_partition_rolling_restart)
{
	proxy px;
	char kc_c[300];
	owners o, before;
	const char *url = fx_kapi_url(srv);
	unsigned up = (unsigned)atoi(strrchr(url, ':') + 1);

	make_objects(NOBJ);
	px_start(&px, up);
	kubeconfig_via(kc_c, sizeof(kc_c), px.port);
	add_member("a", fx_kapi_kubeconfig(srv));
	add_member("b", fx_kapi_kubeconfig(srv));
	add_member("c", kc_c); /* through the proxy */
	/* c resyncs every 250 ms: it acts often, so when it stops shows. */
	static const char *const fast[] = { "--resync", "250ms", NULL };
	double t0 = now_s();
	for (unsigned i = 0; i < nm; i++)
		start_member(&M[i], i == 2 ? fast : NULL);
	wait_owned(NOBJ, 7, 40, 1.0, &o, "start");
	fprintf(stderr, "controller_echo: %u objects owned by 3 members in %.1f s (%u/%u/%u)\n", NOBJ,
	        now_s() - t0, o.count[0], o.count[1], o.count[2]);

	/* kill -9 b: its objects are owned again within lease duration + 2 s. */
	double tk = now_s();
	cr_assert_eq(stop_member(&M[1], SIGKILL), 128 + SIGKILL);
	double tb = wait_owned(NOBJ, 5, 20, 0, &o, "after kill -9 b");
	fprintf(stderr, "controller_echo: b's objects owned again %.2f s after kill -9 (bound %.1f s)\n",
	        tb - tk, LEASE_S + 2);
	cr_assert(tb - tk <= LEASE_S + 2, "took %.2f s", tb - tk);
	start_member(&M[1], NULL);
	wait_owned(NOBJ, 7, 30, 1.0, &o, "b back");

	/* Partition c: it must stop acting before its Lease can run out. */
	double tc = now_s();
	px_cut(&px, 1);
	double tco = wait_owned(NOBJ, 3, 20, 0, &o, "after partitioning c");
	fprintf(stderr, "controller_echo: c's objects owned again %.2f s after the partition\n",
	        tco - tc);
	cr_assert(tco - tc <= LEASE_S + 2, "took %.2f s", tco - tc);
	sleep_s(0.5);
	size_t nr;
	rec *r = read_logs(&nr);
	double lc = last_action(r, nr, 2, tc);
	free(r);
	fprintf(stderr, "controller_echo: partitioned c acted until %.2f s after the cut "
	                "(renew deadline %.1f s, Lease %.1f s)\n", lc - tc, RENEW_S, LEASE_S);
	/* Its last renewal was sent before the cut, so it must stop within
	 * the renew deadline of it; its Lease runs out no earlier than lease
	 * duration - retry period (3 - 0.4 s) after the cut. */
	cr_assert(lc > tc + 1.0, "c stopped acting %.2f s after the cut: the check proves nothing",
	          lc - tc);
	cr_assert(lc - tc < RENEW_S + 0.05, "c acted %.2f s after the cut", lc - tc);
	px_cut(&px, 0);
	wait_owned(NOBJ, 7, 30, 1.0, &o, "c back");

	/* Rolling restart: every member in turn; nothing moves. */
	before = o;
	double tr = now_s();
	for (unsigned i = 0; i < nm; i++) {
		cr_assert_eq(stop_member(&M[i], SIGTERM), 0, "%s did not exit 0", M[i].id);
		start_member(&M[i], i == 2 ? fast : NULL);
		wait_holding(&M[i], 10);
		sleep_s(0.5);
	}
	sleep_s(1.5);
	read_owners(&o, NOBJ);
	cr_assert_eq(o.none, 0);
	for (unsigned i = 0; i < NOBJ; i++)
		cr_assert_eq(o.who[i], before.who[i], "cm-%04u moved from %s to %s", i,
		             M[before.who[i]].id, M[o.who[i]].id);
	r = read_logs(&nr);
	size_t during = 0;
	for (size_t i = 0; i < nr; i++) {
		if (r[i].start < tr)
			continue;
		during++;
		cr_assert_eq(r[i].member, before.who[r[i].obj], "cm-%04u reconciled by %s during the "
		             "rolling restart; its owner was %s", r[i].obj, M[r[i].member].id,
		             M[before.who[r[i].obj]].id);
	}
	cr_assert(during > NOBJ, "only %zu reconciles during the rolling restart", during);

	/* Every life of every member: no overlapping terms. */
	size_t terms = check_terms(r, nr);
	fprintf(stderr, "controller_echo: %zu reconciles, %zu terms, no overlap\n", nr, terms);
	free(r);
	pthread_mutex_lock(&px.mu);
	px.stop = 1;
	pthread_mutex_unlock(&px.mu);
	pthread_join(px.th, NULL);
}

/* ---- metrics ------------------------------------------------------------ */

static unsigned metrics_port(member *m, double timeout)
{
	double t0 = now_s();
	while (now_s() - t0 < timeout) {
		char *txt = slurp(m->log[m->lives - 1], NULL), v[16];
		char *line = txt ? strstr(txt, " event=start ") : NULL;
		if (line && field(line, "metrics_port", v, sizeof(v))) {
			free(txt);
			return (unsigned)atoi(v);
		}
		free(txt);
		sleep_s(0.05);
	}
	cr_assert_fail("no metrics port in %s's log", m->id);
	return 0;
}

static const char *const PARSE =
        "import sys, urllib.request\n"
        "from prometheus_client.parser import text_string_to_metric_families\n"
        "for url in sys.argv[1:]:\n"
        "    text = urllib.request.urlopen(url, timeout=10).read().decode()\n"
        "    v = {}\n"
        "    for fam in text_string_to_metric_families(text):\n"
        "        for s in fam.samples:\n"
        "            v[s.name] = v.get(s.name, 0) + s.value\n"
        "    keys = ['kvc_shards_owned', 'kvc_vshards', 'kvc_objects_cached',\n"
        "            'kvc_reconciles_total', 'kvc_lease_renewals_total',\n"
        "            'kvc_group_load_imbalance', 'kvc_group_load_max', 'kvc_group_load_mean',\n"
        "            'kvc_queue_latency_seconds_count', 'kvc_queue_depth',\n"
        "            'kvc_handoffs_total', 'kvc_kvsplit_bytes_written_total']\n"
        "    print(' '.join('%s=%r' % (k, float(v[k])) for k in keys))\n";

static double metric(const char *line, const char *key)
{
	char v[64];
	cr_assert(field(line, key, v, sizeof(v)), "no %s in: %s", key, line);
	return strtod(v, NULL);
}

Test(controller_echo, metrics_endpoint_parses_as_prometheus_text)
{
	owners o;
	static const char *const extra[] = { "--metrics-addr", "127.0.0.1:0", NULL };
	make_objects(100);
	add_member("a", fx_kapi_kubeconfig(srv));
	add_member("b", fx_kapi_kubeconfig(srv));
	for (unsigned i = 0; i < nm; i++)
		start_member(&M[i], extra);
	wait_owned(100, 3, 30, 1.0, &o, "start");
	sleep_s(1.0); /* a resync and a few renewals */
	char cmd[1024], script[300];
	snprintf(script, sizeof(script), "%s/parse.py", dir);
	FILE *f = fopen(script, "w");
	cr_assert_not_null(f);
	fputs(PARSE, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd),
	         "/usr/bin/python3 %s http://127.0.0.1:%u/metrics http://127.0.0.1:%u/metrics 2>&1",
	         script, metrics_port(&M[0], 5), metrics_port(&M[1], 5));
	FILE *p = popen(cmd, "r");
	cr_assert_not_null(p);
	char out[2][1024];
	double owned = 0, cached = 0;
	for (int i = 0; i < 2; i++) {
		cr_assert_not_null(fgets(out[i], sizeof(out[i]), p), "python printed nothing");
		char line[2100];
		snprintf(line, sizeof(line), " %s", out[i]);
		cr_assert(strstr(line, "kvc_shards_owned="), "python: %s", out[i]);
		owned += metric(line, "kvc_shards_owned");
		cached += metric(line, "kvc_objects_cached");
		cr_assert_eq(metric(line, "kvc_vshards"), 1024);
		cr_assert(metric(line, "kvc_reconciles_total") > 0);
		cr_assert(metric(line, "kvc_lease_renewals_total") > 0);
		cr_assert(metric(line, "kvc_queue_latency_seconds_count") > 0, "%s", line);
		cr_assert(metric(line, "kvc_handoffs_total") > 0);
		double imb = metric(line, "kvc_group_load_imbalance");
		cr_assert(imb >= 1.0 && imb <= 1.10, "imbalance %g", imb);
		cr_assert_float_eq(imb, metric(line, "kvc_group_load_max") /
		                                metric(line, "kvc_group_load_mean"), 1e-9);
		cr_assert_eq(metric(line, "kvc_group_load_mean"), 512);
	}
	cr_assert_eq(pclose(p), 0);
	cr_assert_eq(owned, 1024, "shards owned %g", owned);
	cr_assert_eq(cached, 100, "objects cached %g", cached);
}
