/*
 * The ledger's records in the store: CBOR (RFC 8949), written from and
 * read into the same jansson trees the ledger works on.  Reading JSON text
 * cost an order read 87,000 instructions, nine tenths of them spent
 * lexing; a CBOR record is read item by item with no lexing at all.  JSON
 * stays the form of the API, never of the store (doc/design/store.md).
 *
 * Only what a JSON document can hold is written or read: maps with text
 * keys, arrays, text, integers that fit in 64 signed bits, doubles, true,
 * false and null, all of definite length.  Anything else (tags, byte
 * strings, indefinite lengths, undefined, half and single floats, a key
 * twice, text that is not UTF-8 or holds a NUL, nesting past
 * LEDGER_CBOR_DEPTH, bytes after the record) makes the record unreadable:
 * this payhook never wrote it.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cbor.h>

#include <payhook/sdk.h>

#include "ledger/ledger_int.h"
#include "ledger/order.h"
#include "ops/text.h"

/* Containers, the record's own included: an order's attempt data, the
 * deepest part of any record, begins at the fourth (web/api.c limits
 * what a merchant gives). */
#define LEDGER_CBOR_DEPTH 64
#define LEDGER_CBOR_MAX (64u << 20)	/* far above any record */

/* ---- Writing ------------------------------------------------------------ */

static void
ledger_cbor_head(struct ph_buf *b, size_t (*enc)(size_t, unsigned char *,
    size_t), size_t n)
{
	unsigned char h[9];

	ph_buf_append(b, h, enc(n, h, sizeof(h)));
}

static void
ledger_cbor_text(struct ph_buf *b, const char *s, size_t len)
{
	ledger_cbor_head(b, cbor_encode_string_start, len);
	ph_buf_append(b, s, len);
}

static void
ledger_cbor_put(struct ph_buf *b, const json_t *j, int depth)
{
	unsigned char h[9];
	const char *key;
	json_t *v;
	json_int_t i;
	size_t n;

	if ((json_is_object(j) || json_is_array(j)) &&
	    depth >= LEDGER_CBOR_DEPTH) {
		b->err = PH_E_TOOBIG;	/* as deep as a reader takes, no more */
		return;
	}
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		ledger_cbor_head(b, cbor_encode_map_start, json_object_size(j));
		json_object_foreach((json_t *)j, key, v) {
			ledger_cbor_text(b, key, strlen(key));
			ledger_cbor_put(b, v, depth + 1);
		}
		return;
	case JSON_ARRAY:
		ledger_cbor_head(b, cbor_encode_array_start, json_array_size(j));
		json_array_foreach(j, n, v)
			ledger_cbor_put(b, v, depth + 1);
		return;
	case JSON_STRING:
		ledger_cbor_text(b, json_string_value(j), json_string_length(j));
		return;
	case JSON_INTEGER:
		i = json_integer_value(j);
		/* -1 - i, without overflowing at INT64_MIN */
		n = i >= 0 ? cbor_encode_uint((uint64_t)i, h, sizeof(h)) :
		    cbor_encode_negint((uint64_t)-(i + 1), h, sizeof(h));
		break;
	case JSON_REAL:
		n = cbor_encode_double(json_real_value(j), h, sizeof(h));
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		n = cbor_encode_bool(json_is_true(j), h, sizeof(h));
		break;
	default:
		n = cbor_encode_null(h, sizeof(h));
		break;
	}
	ph_buf_append(b, h, n);
}

int
ledger_cbor_write(const json_t *j, struct ph_buf *out)
{
	ph_buf_init(out, LEDGER_CBOR_MAX);
	if (!json_is_object(j))
		return PH_E_INTERNAL;
	ledger_cbor_put(out, j, 0);
	return out->err;
}

/* Appends a head of hn bytes and n bytes of p where ph_buf_reserve made
 * room for them. */
static void
ledger_cbor_raw(struct ph_buf *b, size_t hn, const unsigned char *h,
    const void *p, size_t n)
{
	memcpy(b->data + b->len, h, hn);
	if (n > 0)
		memcpy(b->data + b->len + hn, p, n);
	b->len += hn + n;
	b->data[b->len] = '\0';
}

/* Is s valid UTF-8, as jansson wants every string it holds? */
static int
ledger_cbor_utf8(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n;

	while (i < len) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if ((n = text_utf8_len(p + i, len - i)) == 0)
			return 0;
		i += n;
	}
	return 1;
}

/* The member of extra named key, or NULL. */
static const json_t *
ledger_cbor_extra(const json_t *extra, const char *key)
{
	return extra != NULL ? json_object_get(extra, key) : NULL;
}

int
ledger_cbor_fields(const struct ledger_field *f, size_t n,
    const json_t *extra, struct ph_buf *out)
{
	const char *key;
	const json_t *v;
	json_t *x;
	size_t i, total = n, len;
	unsigned char h[9];

	ph_buf_init(out, LEDGER_CBOR_MAX);
	if (extra != NULL && !json_is_object(extra))
		return PH_E_INTERNAL;
	/* extra's members that are no field come after the fields */
	json_object_foreach((json_t *)extra, key, x) {
		for (i = 0; i < n && strcmp(f[i].key, key) != 0; i++)
			;
		if (i == n)
			total++;
	}
	ledger_cbor_head(out, cbor_encode_map_start, total);
	for (i = 0; i < n; i++) {
		len = strlen(f[i].key);
		if (f[i].type == LEDGER_F_STR && f[i].s == NULL)
			return PH_E_INTERNAL;
		/* room for the key and the value: then plain copies */
		if (ph_buf_reserve(out, 2 * sizeof(h) + len +
		    (f[i].type == LEDGER_F_STR ? strlen(f[i].s) : 0)) != PH_OK)
			return out->err;
		ledger_cbor_raw(out, cbor_encode_string_start(len, h,
		    sizeof(h)), h, f[i].key, len);
		if ((v = ledger_cbor_extra(extra, f[i].key)) != NULL) {
			ledger_cbor_put(out, v, 1);
			continue;
		}
		if (f[i].type == LEDGER_F_INT) {
			ledger_cbor_raw(out, f[i].i >= 0 ?
			    cbor_encode_uint((uint64_t)f[i].i, h, sizeof(h)) :
			    cbor_encode_negint((uint64_t)-(f[i].i + 1), h,
			    sizeof(h)), h, NULL, 0);
			continue;
		}
		/* what a tree could not hold: json_pack refused it */
		if (!ledger_cbor_utf8(f[i].s, (len = strlen(f[i].s))))
			return PH_E_INTERNAL;
		ledger_cbor_raw(out, cbor_encode_string_start(len, h,
		    sizeof(h)), h, f[i].s, len);
	}
	json_object_foreach((json_t *)extra, key, x) {
		for (i = 0; i < n && strcmp(f[i].key, key) != 0; i++)
			;
		if (i < n)
			continue;
		ledger_cbor_text(out, key, strlen(key));
		ledger_cbor_put(out, x, 1);
	}
	return out->err;
}

/* ---- Reading ------------------------------------------------------------ */

struct ledger_cbor_frame {
	json_t *c;		/* the map or array being filled */
	uint64_t left;		/* items still to come (a map's: keys too) */
	const char *key;	/* a map's: key read (in the record's bytes),
				 * its value to come; NULL before */
	size_t key_len;
};

struct ledger_cbor_rd {
	struct ledger_cbor_frame st[LEDGER_CBOR_DEPTH];
	int depth;
	size_t avail;		/* bytes not yet read: bounds a container */
	json_t *root;
	int err;
};

static int
ledger_cbor_want_key(const struct ledger_cbor_rd *r)
{
	return r->depth > 0 && json_is_object(r->st[r->depth - 1].c) &&
	    r->st[r->depth - 1].key == NULL;
}

/* Sets f's pending key to v in its map; non-zero for a key not UTF-8 or
 * read twice.  Takes the reference to v. */
static int
ledger_cbor_set(struct ledger_cbor_frame *f, json_t *v)
{
	char buf[128], *key = buf;
	size_t before = json_object_size(f->c);
	int rc;

	if (f->key_len >= sizeof(buf) &&
	    (key = malloc(f->key_len + 1)) == NULL) {
		json_decref(v);
		return -1;
	}
	memcpy(key, f->key, f->key_len);
	key[f->key_len] = '\0';
	rc = json_object_set_new(f->c, key, v) != 0 ||
	    json_object_size(f->c) == before;
	if (key != buf)
		free(key);
	f->key = NULL;
	return rc;
}

/* Puts a finished item where it belongs; takes the reference to v. */
static void
ledger_cbor_add(struct ledger_cbor_rd *r, json_t *v)
{
	struct ledger_cbor_frame *f;

	for (;;) {
		if (v == NULL || r->err || ledger_cbor_want_key(r)) {
			json_decref(v);
			r->err = 1;
			return;
		}
		if (r->depth == 0) {
			r->root = v;	/* the last item: the read stops here */
			return;
		}
		f = &r->st[r->depth - 1];
		if (json_is_object(f->c)) {
			if (ledger_cbor_set(f, v) != 0) {
				r->err = 1;
				return;
			}
			f->left -= 2;
		} else {
			if (json_array_append_new(f->c, v) != 0) {
				r->err = 1;
				return;
			}
			f->left--;
		}
		if (f->left > 0)
			return;
		v = f->c;		/* complete: goes into its parent */
		r->depth--;
	}
}

static void
ledger_cbor_open(struct ledger_cbor_rd *r, json_t *c, uint64_t items)
{
	/* Each item takes one byte at least: a larger count is a lie. */
	if (c == NULL || r->err || ledger_cbor_want_key(r) ||
	    items > r->avail || r->depth == LEDGER_CBOR_DEPTH) {
		json_decref(c);
		r->err = 1;
		return;
	}
	if (items == 0) {
		ledger_cbor_add(r, c);
		return;
	}
	r->st[r->depth].c = c;
	r->st[r->depth].left = items;
	r->st[r->depth].key = NULL;
	r->depth++;
}

static void
ledger_cbor_uint(struct ledger_cbor_rd *r, uint64_t v)
{
	if (v > INT64_MAX) {
		r->err = 1;
		return;
	}
	ledger_cbor_add(r, json_integer((json_int_t)v));
}

static void
ledger_cbor_negint(struct ledger_cbor_rd *r, uint64_t v)
{
	if (v > INT64_MAX) {
		r->err = 1;
		return;
	}
	ledger_cbor_add(r, json_integer(-(json_int_t)v - 1));
}

/* libcbor calls back with one function type per width of integer. */
#define LEDGER_CBOR_INT_CB(name, type, fn)				\
	static void name(void *p, type v) { fn(p, v); }
LEDGER_CBOR_INT_CB(cb_uint8, uint8_t, ledger_cbor_uint)
LEDGER_CBOR_INT_CB(cb_uint16, uint16_t, ledger_cbor_uint)
LEDGER_CBOR_INT_CB(cb_uint32, uint32_t, ledger_cbor_uint)
LEDGER_CBOR_INT_CB(cb_uint64, uint64_t, ledger_cbor_uint)
LEDGER_CBOR_INT_CB(cb_negint8, uint8_t, ledger_cbor_negint)
LEDGER_CBOR_INT_CB(cb_negint16, uint16_t, ledger_cbor_negint)
LEDGER_CBOR_INT_CB(cb_negint32, uint32_t, ledger_cbor_negint)
LEDGER_CBOR_INT_CB(cb_negint64, uint64_t, ledger_cbor_negint)

static void
cb_string(void *p, cbor_data s, size_t len)
{
	struct ledger_cbor_rd *r = p;
	struct ledger_cbor_frame *f;

	if (memchr(s, '\0', len) != NULL) {
		r->err = 1;
		return;
	}
	if (!ledger_cbor_want_key(r)) {
		ledger_cbor_add(r, json_stringn((const char *)s, len));
		return;
	}
	f = &r->st[r->depth - 1];
	f->key = (const char *)s;	/* the record's bytes outlive the read */
	f->key_len = len;
}

static void
cb_array(void *p, size_t n)
{
	ledger_cbor_open(p, json_array(), n);
}

static void
cb_map(void *p, size_t n)
{
	struct ledger_cbor_rd *r = p;

	/* n pairs: 2n items, and 2n does not wrap since n <= avail */
	if (n > r->avail) {
		r->err = 1;
		return;
	}
	ledger_cbor_open(r, json_object(), 2 * (uint64_t)n);
}

static void
cb_double(void *p, double v)
{
	ledger_cbor_add(p, json_real(v));	/* NULL for NaN, infinities */
}

static void
cb_null(void *p)
{
	ledger_cbor_add(p, json_null());
}

static void
cb_bool(void *p, bool v)
{
	ledger_cbor_add(p, json_boolean(v));
}

/* What this payhook never writes: the record is not one of its own. */
static void
cb_refuse(void *p)
{
	((struct ledger_cbor_rd *)p)->err = 1;
}

#define LEDGER_CBOR_REFUSE_CB(name, type, fn)				\
	static void name(void *p, type v) { (void)v; fn(p); }
LEDGER_CBOR_REFUSE_CB(cb_refuse_tag, uint64_t, cb_refuse)
LEDGER_CBOR_REFUSE_CB(cb_refuse_float, float, cb_refuse)

static void
cb_refuse_bytes(void *p, cbor_data s, size_t len)
{
	(void)s;
	(void)len;
	cb_refuse(p);
}

static const struct cbor_callbacks ledger_cbor_callbacks = {
	.uint8 = cb_uint8,
	.uint16 = cb_uint16,
	.uint32 = cb_uint32,
	.uint64 = cb_uint64,
	.negint8 = cb_negint8,
	.negint16 = cb_negint16,
	.negint32 = cb_negint32,
	.negint64 = cb_negint64,
	.byte_string_start = cb_refuse,
	.byte_string = cb_refuse_bytes,
	.string = cb_string,
	.string_start = cb_refuse,
	.indef_array_start = cb_refuse,
	.array_start = cb_array,
	.indef_map_start = cb_refuse,
	.map_start = cb_map,
	.tag = cb_refuse_tag,
	.float2 = cb_refuse_float,
	.float4 = cb_refuse_float,
	.float8 = cb_double,
	.undefined = cb_refuse,
	.null = cb_null,
	.boolean = cb_bool,
	.indef_break = cb_refuse,
};

json_t *
ledger_cbor_read(const void *data, size_t len)
{
	struct ledger_cbor_rd r;
	struct cbor_decoder_result res;
	const unsigned char *p = data;
	int d;

	r.depth = 0;
	r.root = NULL;
	r.err = 0;
	while (len > 0 && !r.err) {
		r.avail = len;
		res = cbor_stream_decode(p, len, &ledger_cbor_callbacks, &r);
		if (res.status != CBOR_DECODER_FINISHED || res.read == 0 ||
		    res.read > len) {
			r.err = 1;
			break;
		}
		p += res.read;
		len -= res.read;
		/* bytes after a finished record: not a record */
		if (r.root != NULL && len > 0)
			r.err = 1;
	}
	if (r.err || r.depth != 0 || !json_is_object(r.root)) {
		/* an open container is not yet in its parent: each its own */
		for (d = 0; d < r.depth; d++)
			json_decref(r.st[d].c);
		json_decref(r.root);
		return NULL;
	}
	return r.root;
}

/* ---- Showing a record as the API's JSON --------------------------------- */

/*
 * A record shown straight from its bytes, with no tree: the text jansson
 * would dump (compact, UTF-8 as it is, \uXXXX for other control
 * characters) of the tree order_view_new makes, refused where
 * ledger_cbor_read refuses.  An order read spent two thirds of its
 * instructions building the tree, editing it and dumping it.
 */

enum ledger_view_val {
	VIEW_PLAIN,		/* the value as it is */
	VIEW_SKIP,		/* left out: a dropped key's */
	VIEW_TIME,		/* an integer becomes RFC 3339 text */
	VIEW_LIST		/* an array whose maps are shown by sub */
};

struct ledger_view_frame {
	uint64_t left;		/* items still to come (a map's: keys too) */
	int map;
	int skip;		/* left out, all it holds with it */
	int shown;		/* items written: a comma before the next */
	const struct order_api_spec *spec;	/* a map's, or NULL */
	const struct order_api_spec *elem;	/* an array's: its maps' */
	enum ledger_view_val val;	/* a map's: what its key read makes of
					 * the value to come */
	size_t keys;		/* a map's: where its keys begin in keys */
};

struct ledger_view_wr {
	struct ledger_view_frame st[LEDGER_CBOR_DEPTH];
	int depth;
	size_t avail;
	int want_key;		/* the next text is a key */
	int done;		/* the record is complete */
	int err;		/* PH_E_STORE: not a record; PH_E_UNSUPPORTED:
				 * one the tree must show (a double) */
	const struct order_api_spec *spec;	/* the record's own map's */
	struct ph_buf *out;
	struct ph_buf keys;	/* the open maps' keys: length, then bytes */
	char stage[1024];	/* text on its way to out: one append a KiB */
	size_t staged;
};

static void
ledger_view_flush(struct ledger_view_wr *w)
{
	ph_buf_append(w->out, w->stage, w->staged);
	w->staged = 0;
}

static void
ledger_view_put(struct ledger_view_wr *w, const void *p, size_t n)
{
	if (n > sizeof(w->stage) - w->staged) {
		ledger_view_flush(w);
		if (n > sizeof(w->stage)) {
			ph_buf_append(w->out, p, n);
			return;
		}
	}
	memcpy(w->stage + w->staged, p, n);
	w->staged += n;
}

static int
ledger_view_listed(const char *const *names, const char *s, size_t len)
{
	for (; names != NULL && *names != NULL; names++)
		if ((len == 0 || (*names)[0] == s[0]) &&
		    strlen(*names) == len && memcmp(*names, s, len) == 0)
			return 1;
	return 0;
}

static void
ledger_view_fail(struct ledger_view_wr *w, int rc)
{
	if (w->err == PH_OK)
		w->err = rc;
}

/* The frame the next item goes in; NULL at the top. */
static struct ledger_view_frame *
ledger_view_top(struct ledger_view_wr *w)
{
	return w->depth > 0 ? &w->st[w->depth - 1] : NULL;
}

/* Is the item about to come left out? */
static int
ledger_view_skipped(const struct ledger_view_wr *w)
{
	const struct ledger_view_frame *f;

	if (w->depth == 0)
		return 0;
	f = &w->st[w->depth - 1];
	return f->skip || (f->map && f->val == VIEW_SKIP);
}

/* Writes the comma an item shown after another needs. */
static void
ledger_view_sep(struct ledger_view_wr *w)
{
	struct ledger_view_frame *f = ledger_view_top(w);

	if (f != NULL && !f->map && f->shown++ > 0)
		ledger_view_put(w, ",", 1);
}

/* An item is complete: counts it off, closing what it completes. */
static void
ledger_view_end(struct ledger_view_wr *w)
{
	struct ledger_view_frame *f;

	while ((f = ledger_view_top(w)) != NULL) {
		if (f->map) {
			f->left -= 2;
			f->val = VIEW_PLAIN;
			w->want_key = 1;
		} else {
			f->left--;
			w->want_key = 0;
		}
		if (f->left > 0)
			return;
		if (!f->skip)
			ledger_view_put(w, f->map ? "}" : "]", 1);
		if (f->map)
			w->keys.len = f->keys;
		w->depth--;
	}
	w->done = 1;
	w->want_key = 0;
}

/* Is it an item where one may stand (not a key, not past the end, not a
 * scalar at the top)? */
static int
ledger_view_value_ok(struct ledger_view_wr *w, int container)
{
	if (w->err != PH_OK)
		return 0;
	if (w->want_key || w->done || (w->depth == 0 && !container)) {
		ledger_view_fail(w, PH_E_STORE);
		return 0;
	}
	return 1;
}

/* JSON text of s, written when show is set, checked either way: runs of
 * bytes that need no escape copied whole. */
static void
ledger_view_text(struct ledger_view_wr *w, const unsigned char *s, size_t len,
    int show)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i = 0, run = 0, n;
	char esc[6];

	if (show)
		ledger_view_put(w, "\"", 1);
	while (i < len) {
		if (s[i] >= 0x20 && s[i] < 0x80 && s[i] != '"' &&
		    s[i] != '\\') {
			i++;
			continue;
		}
		if (s[i] >= 0x80) {
			if ((n = text_utf8_len(s + i, len - i)) == 0) {
				ledger_view_fail(w, PH_E_STORE);
				return;
			}
			i += n;
			continue;
		}
		if (s[i] == '\0') {
			ledger_view_fail(w, PH_E_STORE);
			return;
		}
		if (!show) {
			i++;
			continue;
		}
		ledger_view_put(w, s + run, i - run);
		esc[0] = '\\';
		n = 2;
		switch (s[i]) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[s[i] >> 4];
			esc[5] = hex[s[i] & 0xf];
			n = 6;
			break;
		}
		ledger_view_put(w, esc, n);
		run = ++i;
	}
	if (show) {
		ledger_view_put(w, s + run, len - run);
		ledger_view_put(w, "\"", 1);
	}
}

/* A key: checked against the map's others, then what it makes of its
 * value decided. */
static void
ledger_view_key(struct ledger_view_wr *w, const unsigned char *s, size_t len)
{
	struct ledger_view_frame *f = ledger_view_top(w);
	size_t at = f->keys, klen;
	const char *p;

	while (at < w->keys.len) {
		p = w->keys.data + at;
		memcpy(&klen, p, sizeof(klen));
		p += sizeof(klen);
		if (klen == len && memcmp(p, s, len) == 0) {
			ledger_view_fail(w, PH_E_STORE);	/* a key twice */
			return;
		}
		at += sizeof(klen) + klen;
	}
	ph_buf_append(&w->keys, &len, sizeof(len));
	ph_buf_append(&w->keys, s, len);
	w->want_key = 0;
	f->val = VIEW_PLAIN;
	if (f->spec != NULL) {
		if (ledger_view_listed(f->spec->drop, (const char *)s, len))
			f->val = VIEW_SKIP;
		else if (ledger_view_listed(f->spec->times, (const char *)s,
		    len))
			f->val = VIEW_TIME;
		else if (ledger_view_listed(f->spec->lists, (const char *)s,
		    len))
			f->val = VIEW_LIST;
	}
	if (f->skip || f->val == VIEW_SKIP) {
		ledger_view_text(w, s, len, 0);
		return;
	}
	if (f->shown++ > 0)
		ledger_view_put(w, ",", 1);
	ledger_view_text(w, s, len, 1);
	ledger_view_put(w, ":", 1);
}

static void
ledger_view_int(struct ledger_view_wr *w, int neg, uint64_t v)
{
	struct ledger_view_frame *f = ledger_view_top(w);
	char buf[32], *p = buf + sizeof(buf);
	int64_t i;

	if (!ledger_view_value_ok(w, 0))
		return;
	if (v > INT64_MAX) {
		ledger_view_fail(w, PH_E_STORE);
		return;
	}
	i = neg ? -(int64_t)v - 1 : (int64_t)v;
	if (!ledger_view_skipped(w)) {
		ledger_view_sep(w);
		if (f != NULL && f->map && f->val == VIEW_TIME) {
			text_time(i, buf);
			ledger_view_text(w, (const unsigned char *)buf,
			    strlen(buf), 1);
		} else {
			/* the digits of |i|, without overflowing at INT64_MIN */
			v = neg ? v + 1 : v;
			do {
				*--p = (char)('0' + v % 10);
				v /= 10;
			} while (v > 0);
			if (neg)
				*--p = '-';
			ledger_view_put(w, p, (size_t)(buf + sizeof(buf) - p));
		}
	}
	ledger_view_end(w);
}

static void
ledger_view_uint(struct ledger_view_wr *w, uint64_t v)
{
	ledger_view_int(w, 0, v);
}

static void
ledger_view_negint(struct ledger_view_wr *w, uint64_t v)
{
	ledger_view_int(w, 1, v);
}

LEDGER_CBOR_INT_CB(vw_uint8, uint8_t, ledger_view_uint)
LEDGER_CBOR_INT_CB(vw_uint16, uint16_t, ledger_view_uint)
LEDGER_CBOR_INT_CB(vw_uint32, uint32_t, ledger_view_uint)
LEDGER_CBOR_INT_CB(vw_uint64, uint64_t, ledger_view_uint)
LEDGER_CBOR_INT_CB(vw_negint8, uint8_t, ledger_view_negint)
LEDGER_CBOR_INT_CB(vw_negint16, uint16_t, ledger_view_negint)
LEDGER_CBOR_INT_CB(vw_negint32, uint32_t, ledger_view_negint)
LEDGER_CBOR_INT_CB(vw_negint64, uint64_t, ledger_view_negint)

/* A scalar written as the given text. */
static void
ledger_view_word(struct ledger_view_wr *w, const char *text)
{
	if (!ledger_view_value_ok(w, 0))
		return;
	if (!ledger_view_skipped(w)) {
		ledger_view_sep(w);
		ledger_view_put(w, text, strlen(text));
	}
	ledger_view_end(w);
}

static void
vw_string(void *p, cbor_data s, size_t len)
{
	struct ledger_view_wr *w = p;

	if (w->err != PH_OK)
		return;
	if (w->want_key) {
		ledger_view_key(w, s, len);
		return;
	}
	if (!ledger_view_value_ok(w, 0))
		return;
	if (!ledger_view_skipped(w))
		ledger_view_sep(w);
	ledger_view_text(w, s, len, !ledger_view_skipped(w));
	ledger_view_end(w);
}

static void
ledger_view_open(struct ledger_view_wr *w, int map, uint64_t items)
{
	struct ledger_view_frame *parent = ledger_view_top(w), *f;
	const struct order_api_spec *spec = NULL, *elem = NULL;
	int skip;

	if (!ledger_view_value_ok(w, 1))
		return;
	/* each item takes one byte at least: a larger count is a lie */
	if (items > w->avail || w->depth == LEDGER_CBOR_DEPTH ||
	    (parent == NULL && !map)) {
		ledger_view_fail(w, PH_E_STORE);
		return;
	}
	skip = ledger_view_skipped(w);
	if (parent == NULL)
		spec = w->spec;
	else if (map && !parent->map)
		spec = parent->elem;
	else if (!map && parent->map && parent->val == VIEW_LIST &&
	    parent->spec != NULL)
		elem = parent->spec->sub;
	if (!skip) {
		ledger_view_sep(w);
		ledger_view_put(w, map ? "{" : "[", 1);
	}
	if (items == 0) {
		if (!skip)
			ledger_view_put(w, map ? "}" : "]", 1);
		ledger_view_end(w);
		return;
	}
	f = &w->st[w->depth++];
	f->left = map ? 2 * items : items;
	f->map = map;
	f->skip = skip;
	f->shown = 0;
	f->spec = spec;
	f->elem = elem;
	f->val = VIEW_PLAIN;
	f->keys = w->keys.len;
	w->want_key = map;
}

static void
vw_array(void *p, size_t n)
{
	ledger_view_open(p, 0, n);
}

static void
vw_map(void *p, size_t n)
{
	ledger_view_open(p, 1, n);
}

static void
vw_double(void *p, double v)
{
	/* jansson's text of a double is the tree's to give (which reads the
	 * whole record again, refusing what it refuses); a NaN or an
	 * infinity it refuses */
	if (ledger_view_value_ok(p, 0))
		ledger_view_fail(p, isfinite(v) ? PH_E_UNSUPPORTED :
		    PH_E_STORE);
}

static void
vw_null(void *p)
{
	ledger_view_word(p, "null");
}

static void
vw_bool(void *p, bool v)
{
	ledger_view_word(p, v ? "true" : "false");
}

static void
vw_refuse(void *p)
{
	ledger_view_fail(p, PH_E_STORE);
}

LEDGER_CBOR_REFUSE_CB(vw_refuse_tag, uint64_t, vw_refuse)
LEDGER_CBOR_REFUSE_CB(vw_refuse_float, float, vw_refuse)

static void
vw_refuse_bytes(void *p, cbor_data s, size_t len)
{
	(void)s;
	(void)len;
	vw_refuse(p);
}

static const struct cbor_callbacks ledger_view_callbacks = {
	.uint8 = vw_uint8,
	.uint16 = vw_uint16,
	.uint32 = vw_uint32,
	.uint64 = vw_uint64,
	.negint8 = vw_negint8,
	.negint16 = vw_negint16,
	.negint32 = vw_negint32,
	.negint64 = vw_negint64,
	.byte_string_start = vw_refuse,
	.byte_string = vw_refuse_bytes,
	.string = vw_string,
	.string_start = vw_refuse,
	.indef_array_start = vw_refuse,
	.array_start = vw_array,
	.indef_map_start = vw_refuse,
	.map_start = vw_map,
	.tag = vw_refuse_tag,
	.float2 = vw_refuse_float,
	.float4 = vw_refuse_float,
	.float8 = vw_double,
	.undefined = vw_refuse,
	.null = vw_null,
	.boolean = vw_bool,
	.indef_break = vw_refuse,
};

int
ledger_cbor_view(const void *data, size_t len,
    const struct order_api_spec *spec, struct ph_buf *out)
{
	struct ledger_view_wr w;
	struct cbor_decoder_result res;
	const unsigned char *p = data;
	size_t start = out->len;

	/* the frames are set as they open, the stage as it fills */
	w.depth = 0;
	w.want_key = 0;
	w.done = 0;
	w.err = PH_OK;
	w.staged = 0;
	w.spec = spec;
	w.out = out;
	ph_buf_init(&w.keys, LEDGER_CBOR_MAX);
	while (len > 0 && w.err == PH_OK) {
		if (w.done) {
			w.err = PH_E_STORE;	/* bytes after the record */
			break;
		}
		w.avail = len;
		res = cbor_stream_decode(p, len, &ledger_view_callbacks, &w);
		if (res.status != CBOR_DECODER_FINISHED || res.read == 0 ||
		    res.read > len) {
			ledger_view_fail(&w, PH_E_STORE);
			break;
		}
		p += res.read;
		len -= res.read;
	}
	ledger_view_flush(&w);
	if (w.err == PH_OK && (!w.done || w.keys.err || out->err))
		w.err = w.keys.err || out->err ? PH_E_NOMEM : PH_E_STORE;
	ph_buf_free(&w.keys);
	if (w.err != PH_OK) {
		out->len = start;	/* nothing of a record not shown */
		if (out->data != NULL)
			out->data[start] = '\0';
	}
	return w.err;
}
