/*
 * mapwatch.c — field events of watches on key-split maps (mapwatch.h).
 */
#include <stdlib.h>
#include <string.h>

#include "maprun.h"
#include "mapwatch.h"

/* A field the delivered version holds. */
typedef struct mfname {
	uint8_t *name;
	uint32_t nlen;
	uint64_t ver;
} mfname;

/* A run of the delivered version. */
typedef struct mfrun {
	uint8_t addr[16];
	uint8_t level;
	uint8_t *min, *max;
	uint16_t minlen, maxlen;
	uint8_t *names;          /* delta runs: each name as u32 length + bytes */
	size_t names_len;
} mfrun;

struct kvs__mfstate {
	mfname *f;               /* sorted by name */
	size_t n;
	mfrun *r;
	size_t nr;
	/* format version 4: the base runs of the base table last read, so an
	 * event over the same base table fetches nothing for it */
	kvs__mapidx base;
};

/* A growable list of names (candidates), each copied. */
typedef struct nlist {
	uint8_t **p;
	uint32_t *len;
	size_t n, cap;
} nlist;

static void nlist_free(nlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->p[i]);
	free(l->p);
	free(l->len);
	memset(l, 0, sizeof(*l));
}

static int nlist_add(nlist *l, const uint8_t *name, uint32_t len)
{
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 64;
		uint8_t **np = realloc(l->p, nc * sizeof(*np));
		uint32_t *nl;
		if (!np)
			return kvs_error_set(KVS_ENOMEM, "watch: out of memory");
		l->p = np;
		if (!(nl = realloc(l->len, nc * sizeof(*nl))))
			return kvs_error_set(KVS_ENOMEM, "watch: out of memory");
		l->len = nl;
		l->cap = nc;
	}
	if (!(l->p[l->n] = malloc(len ? len : 1)))
		return kvs_error_set(KVS_ENOMEM, "watch: out of memory");
	memcpy(l->p[l->n], name, len);
	l->len[l->n++] = len;
	return 0;
}

static void run_clear(mfrun *r)
{
	free(r->min);
	free(r->max);
	free(r->names);
}

void kvs__mfstate_free(kvs__mfstate *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < st->n; i++)
		free(st->f[i].name);
	for (size_t i = 0; i < st->nr; i++)
		run_clear(&st->r[i]);
	free(st->f);
	free(st->r);
	kvs__mapidx_clear(&st->base);
	free(st);
}

void kvs__mfchanges_clear(kvs__mfchanges *c)
{
	for (size_t i = 0; i < c->nbufs; i++)
		free(c->bufs[i]);
	free(c->bufs);
	free(c->v);
	memset(c, 0, sizeof(*c));
}

/* Keep `p` (malloc'd; freed here on failure) with the changes. */
static int keep_buf(kvs__mfchanges *c, uint8_t *p)
{
	if (c->nbufs == c->capbufs) {
		size_t nc = c->capbufs ? c->capbufs * 2 : 64;
		uint8_t **np = realloc(c->bufs, nc * sizeof(*np));
		if (!np) {
			free(p);
			return kvs_error_set(KVS_ENOMEM, "watch: out of memory");
		}
		c->bufs = np;
		c->capbufs = nc;
	}
	c->bufs[c->nbufs++] = p;
	return 0;
}

/*
 * Whether a value of vlen bytes is delivered: values go out in field order
 * while their total stays within the budget; once one does not fit, it and
 * every later one of the event are withheld (a prefix, so a caller can tell
 * where delivery stopped).
 */
static int value_fits(kvs__mfchanges *c, uint64_t max_bytes, size_t vlen)
{
	if (c->withheld || (max_bytes != KVS_MAX_BYTES_UNLIMITED &&
	                    (vlen > max_bytes || c->vbytes > max_bytes - vlen))) {
		c->withheld++;
		return 0;
	}
	c->vbytes += vlen;
	return 1;
}

/*
 * Add a change; the name is copied, `val` (malloc'd, may be NULL) taken.
 * `withheld`: no value, value_len says how long it is.
 */
static int add_change(kvs__mfchanges *c, kvs_map_field_kind kind, const uint8_t *name,
                      uint32_t nlen, uint8_t *val, size_t vlen, int is_json, uint64_t ver,
                      int withheld)
{
	kvs_map_field_change *x;
	uint8_t *nm;
	int rc;

	if (val && (rc = keep_buf(c, val)) < 0)
		return rc;
	if (!(nm = malloc(nlen ? nlen : 1)))
		return kvs_error_set(KVS_ENOMEM, "watch: out of memory");
	memcpy(nm, name, nlen);
	if ((rc = keep_buf(c, nm)) < 0)
		return rc;
	if (c->n == c->cap) {
		size_t nc = c->cap ? c->cap * 2 : 16;
		kvs_map_field_change *nv = realloc(c->v, nc * sizeof(*nv));
		if (!nv)
			return kvs_error_set(KVS_ENOMEM, "watch: out of memory");
		c->v = nv;
		c->cap = nc;
	}
	x = &c->v[c->n++];
	memset(x, 0, sizeof(*x));
	x->kind = kind;
	x->field = nm;
	x->field_len = nlen;
	x->value = val ? (const void *)val : NULL;
	x->value_len = val || withheld ? vlen : 0;
	x->is_json = is_json;
	x->version = ver;
	return 0;
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n)
{
	uint8_t *d = malloc(n ? n : 1);
	if (d && n)
		memcpy(d, p, n);
	return d;
}

/* Position of `name` in the state's sorted fields; *hit if it is there. */
static size_t f_pos(const kvs__mfstate *st, const uint8_t *name, size_t nlen, int *hit)
{
	size_t lo = 0, hi = st ? st->n : 0;

	*hit = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = kvs__mname_cmp(st->f[mid].name, st->f[mid].nlen, name, nlen);
		if (c == 0) {
			*hit = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The state's record of run `r` of the new table; level-0 names from `raw`
 * when given (a run not seen before), else copied from `prev`. */
static int run_record(mfrun *d, const kvs__mrun *r, const mfrun *prev, const uint8_t *raw)
{
	memset(d, 0, sizeof(*d));
	memcpy(d->addr, r->addr, 16);
	d->level = r->level;
	d->minlen = r->minlen;
	d->maxlen = r->maxlen;
	if (!(d->min = dup_bytes(r->min, r->minlen)) || !(d->max = dup_bytes(r->max, r->maxlen)))
		goto oom;
	if (r->level != 0)
		return 0;
	if (prev) {
		if (!(d->names = dup_bytes(prev->names, prev->names_len)))
			goto oom;
		d->names_len = prev->names_len;
		return 0;
	}
	{
		kvs__mcur c = { raw, r->raw_len, 0 };
		kvs__ment e;
		size_t cap = (size_t)r->nent * 4 + r->raw_len, o = 0;
		int rc;
		if (!(d->names = malloc(cap ? cap : 1)))
			goto oom;
		while ((rc = kvs__mcur_next(&c, &e)) == 0 && o + 4 + e.nlen <= cap) {
			kvs__put_be32(d->names + o, e.nlen);
			memcpy(d->names + o + 4, e.name, e.nlen);
			o += 4 + e.nlen;
		}
		d->names_len = o;
	}
	return 0;
oom:
	run_clear(d);
	memset(d, 0, sizeof(*d));
	return kvs_error_set(KVS_ENOMEM, "watch: out of memory");
}

static int cmp_mfrun_addr(const void *a, const void *b)
{
	const mfrun *x = *(const mfrun *const *)a, *y = *(const mfrun *const *)b;
	return memcmp(x->addr, y->addr, 16);
}

typedef struct cand {
	const uint8_t *p;
	uint32_t len;
} cand;

static int cmp_cand(const void *a, const void *b)
{
	const cand *x = a, *y = b;
	return kvs__mname_cmp(x->p, x->len, y->p, y->len);
}

/* Every field of `ix` is ADDED (the first event of a key). */
static int diff_initial(kvs__mfstate *ns, kvs__mfchanges *out, kvs_store *s,
                        const kvs__mapidx *ix, int values, uint64_t max_bytes, const char *what)
{
	kvs__mmerge mg;
	kvs__ment e;
	size_t cap = 0;
	int rc;

	memset(&mg, 0, sizeof(mg));
	if ((rc = kvs__mmerge_init(&mg, s, ix, 0, NULL, 0, NULL, 0, what, NULL)) < 0)
		return rc;
	while ((rc = kvs__mmerge_next(&mg, &e)) == 0) {
		uint8_t *val = NULL, *nm;
		int give = values && value_fits(out, max_bytes, e.vlen);
		if (give && !(val = dup_bytes(e.val, e.vlen))) {
			rc = kvs_error_set(KVS_ENOMEM, "watch: out of memory");
			break;
		}
		if ((rc = add_change(out, KVS_MAP_FIELD_ADDED, e.name, e.nlen, val, e.vlen,
		                     e.type == KVS__MV_JSON, e.ver, values && !give)) < 0)
			break;
		if (ns->n == cap) {
			size_t nc = cap ? cap * 2 : 256;
			mfname *nf = realloc(ns->f, nc * sizeof(*nf));
			if (!nf) {
				rc = kvs_error_set(KVS_ENOMEM, "watch: out of memory");
				break;
			}
			ns->f = nf;
			cap = nc;
		}
		if (!(nm = dup_bytes(e.name, e.nlen))) {
			rc = kvs_error_set(KVS_ENOMEM, "watch: out of memory");
			break;
		}
		ns->f[ns->n].name = nm;
		ns->f[ns->n].nlen = e.nlen;
		ns->f[ns->n].ver = e.ver;
		ns->n++;
	}
	kvs__mmerge_free(&mg);
	return rc == KVS_EITER_DONE ? 0 : rc;
}

/*
 * From `old` to `ix`: candidates from the runs ix added and the runs it
 * dropped, each looked up in ix. The new state's fields are built from
 * old's and the changes.
 */
static int diff_next(kvs__mfstate *ns, kvs__mfchanges *out, kvs_store *s, const kvs__mapidx *ix,
                     const kvs__mfstate *old, int values, uint64_t max_bytes, const char *what)
{
	const mfrun **byaddr = NULL;
	uint8_t *used = NULL;
	nlist cl = { 0 };
	cand *cv = NULL;
	size_t ncv = 0, nadd = 0;
	int rc = 0;

	if (!(byaddr = malloc((old->nr + 1) * sizeof(*byaddr))) || !(used = calloc(old->nr + 1, 1))) {
		rc = kvs_error_set(KVS_ENOMEM, "watch: out of memory");
		goto out;
	}
	for (size_t i = 0; i < old->nr; i++)
		byaddr[i] = &old->r[i];
	if (old->nr > 1)
		qsort(byaddr, old->nr, sizeof(*byaddr), cmp_mfrun_addr);
	/* runs of the new table: shared ones as they were, new ones read */
	for (uint32_t i = 0; i < ix->nruns; i++) {
		const kvs__mrun *r = &ix->runs[i];
		mfrun key, *kp = &key;
		const mfrun **hit;
		const uint8_t *raw;
		uint8_t *owned = NULL;
		memcpy(key.addr, r->addr, 16);
		hit = old->nr ? bsearch(&kp, byaddr, old->nr, sizeof(*byaddr), cmp_mfrun_addr) : NULL;
		if (hit && (*hit)->level == r->level) {
			used[*hit - old->r] = 1;
			if ((rc = run_record(&ns->r[ns->nr], r, *hit, NULL)) < 0)
				goto out;
			ns->nr++;
			continue;
		}
		if ((rc = kvs__mrun_load(&raw, &owned, s, ix, r, what, NULL)) < 0)
			goto out;
		{
			kvs__mcur c = { raw, r->raw_len, 0 };
			kvs__ment e;
			while (rc == 0 && (rc = kvs__mcur_next(&c, &e)) == 0)
				rc = nlist_add(&cl, e.name, e.nlen);
			if (rc == KVS_EITER_DONE)
				rc = 0;
		}
		if (rc == 0 && (rc = run_record(&ns->r[ns->nr], r, NULL, raw)) == 0)
			ns->nr++;
		free(owned);
		if (rc < 0)
			goto out;
	}
	/* runs the new table dropped: the names they held */
	for (size_t i = 0; i < old->nr; i++) {
		const mfrun *r = &old->r[i];
		int h;
		if (used[i])
			continue;
		if (r->level == 0) {
			for (size_t o = 0; o + 4 <= r->names_len && rc == 0;) {
				uint32_t l = kvs__get_be32(r->names + o);
				if (o + 4 + l > r->names_len)
					break;
				rc = nlist_add(&cl, r->names + o + 4, l);
				o += 4 + l;
			}
		} else {
			for (size_t j = f_pos(old, r->min, r->minlen, &h); j < old->n && rc == 0 &&
			     kvs__mname_cmp(old->f[j].name, old->f[j].nlen, r->max, r->maxlen) <= 0; j++)
				rc = nlist_add(&cl, old->f[j].name, old->f[j].nlen);
		}
		if (rc < 0)
			goto out;
	}
	if (!(cv = malloc((cl.n + 1) * sizeof(*cv)))) {
		rc = kvs_error_set(KVS_ENOMEM, "watch: out of memory");
		goto out;
	}
	for (size_t i = 0; i < cl.n; i++) {
		cv[i].p = cl.p[i];
		cv[i].len = cl.len[i];
	}
	if (cl.n > 1)
		qsort(cv, cl.n, sizeof(*cv), cmp_cand);
	for (size_t i = 0; i < cl.n; i++)
		if (ncv == 0 || cmp_cand(&cv[ncv - 1], &cv[i]) != 0)
			cv[ncv++] = cv[i];
	/* each candidate against the new table and the old state */
	for (size_t i = 0; i < ncv; i++) {
		kvs__ment e;
		uint8_t *val = NULL;
		int found = 0, inold, live, give;
		size_t at;
		if ((rc = kvs__map_lookup(&found, &e, &val, s, ix, cv[i].p, cv[i].len, what, NULL)) < 0)
			goto out;
		at = f_pos(old, cv[i].p, cv[i].len, &inold);
		live = found && e.type != KVS__MV_TOMB;
		/* a value is given only for a change that is reported */
		give = values && live && (!inold || old->f[at].ver != e.ver) &&
		       value_fits(out, max_bytes, e.vlen);
		if (!give) {
			free(val);
			val = NULL;
		}
		if (live && !inold) {
			rc = add_change(out, KVS_MAP_FIELD_ADDED, cv[i].p, cv[i].len, val, e.vlen,
			                e.type == KVS__MV_JSON, e.ver, values && !give);
			nadd++;
		} else if (live && old->f[at].ver != e.ver) {
			rc = add_change(out, KVS_MAP_FIELD_CHANGED, cv[i].p, cv[i].len, val, e.vlen,
			                e.type == KVS__MV_JSON, e.ver, values && !give);
		} else if (!live && inold) {
			rc = add_change(out, KVS_MAP_FIELD_DELETED, cv[i].p, cv[i].len, NULL, 0, 0, 0, 0);
		} else {
			free(val);
		}
		if (rc < 0)
			goto out;
	}
	/* the new fields: old's, with the changes applied (both sorted) */
	if (!(ns->f = malloc((old->n + nadd + 1) * sizeof(*ns->f)))) {
		rc = kvs_error_set(KVS_ENOMEM, "watch: out of memory");
		goto out;
	}
	{
		size_t a = 0, c = 0;
		while (a < old->n || c < out->n) {
			const kvs_map_field_change *x = c < out->n ? &out->v[c] : NULL;
			int cmp = !x ? -1 : a >= old->n ? 1
			          : kvs__mname_cmp(old->f[a].name, old->f[a].nlen, x->field,
			                           x->field_len);
			mfname *d = &ns->f[ns->n];
			if (cmp < 0) {
				if (!(d->name = dup_bytes(old->f[a].name, old->f[a].nlen)))
					goto oom;
				d->nlen = old->f[a].nlen;
				d->ver = old->f[a].ver;
				ns->n++;
				a++;
				continue;
			}
			if (cmp == 0)
				a++;
			c++;
			if (x->kind == KVS_MAP_FIELD_DELETED)
				continue;
			if (!(d->name = dup_bytes(x->field, x->field_len)))
				goto oom;
			d->nlen = (uint32_t)x->field_len;
			d->ver = x->version;
			ns->n++;
		}
	}
out:
	nlist_free(&cl);
	free(cv);
	free(byaddr);
	free(used);
	return rc;
oom:
	rc = kvs_error_set(KVS_ENOMEM, "watch: out of memory");
	goto out;
}

int kvs__mapwatch_diff(kvs__mfstate **state, kvs__mfchanges *out, kvs_store *s,
                       const kvs__manifest *m, int values, uint64_t max_bytes, const char *what)
{
	kvs__mfstate *ns;
	kvs__mapidx ix;
	int rc;

	kvs__mfchanges_clear(out);
	/* a base table (format version 4): the one kept, when the new table
	 * names the same; else read through the segment cache */
	if ((rc = kvs__mapidx_decode(&ix, m, what)) < 0)
		return rc;
	if (ix.bt_pending && *state && (*state)->base.has_bt &&
	    memcmp((*state)->base.bt.addr, ix.bt.addr, 16) == 0)
		rc = kvs__mapidx_adopt_base(&ix, &(*state)->base, what);
	else
		rc = kvs__mapidx_load_base(&ix, s, what, NULL);
	if (rc < 0)
		return rc;
	if (!(ns = calloc(1, sizeof(*ns))) ||
	    !(ns->r = calloc((size_t)ix.nruns + 1, sizeof(*ns->r)))) {
		free(ns);
		kvs__mapidx_clear(&ix);
		return kvs_error_set(KVS_ENOMEM, "watch: out of memory");
	}
	if (!*state) {
		rc = diff_initial(ns, out, s, &ix, values, max_bytes, what);
		for (uint32_t i = 0; rc == 0 && i < ix.nruns; i++) {
			const kvs__mrun *r = &ix.runs[i];
			const uint8_t *raw = NULL;
			uint8_t *owned = NULL;
			/* delta runs are read for their names (inline, mostly) */
			if (r->level == 0 && (rc = kvs__mrun_load(&raw, &owned, s, &ix, r, what, NULL)) < 0)
				break;
			if ((rc = run_record(&ns->r[ns->nr], r, NULL, raw)) == 0)
				ns->nr++;
			free(owned);
		}
	} else {
		rc = diff_next(ns, out, s, &ix, *state, values, max_bytes, what);
	}
	if (rc == 0 && ix.has_bt)
		rc = kvs__mapidx_copy_base(&ns->base, &ix);
	kvs__mapidx_clear(&ix);
	if (rc < 0) {
		kvs__mfstate_free(ns);
		kvs__mfchanges_clear(out);
		return rc;
	}
	kvs__mfstate_free(*state);
	*state = ns;
	return 0;
}
