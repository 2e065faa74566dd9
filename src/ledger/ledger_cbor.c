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
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cbor.h>

#include <payhook/sdk.h>

#include "ledger/ledger_int.h"

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

#define LEDGER_CBOR_REFUSE_CB(name, type)				\
	static void name(void *p, type v) { (void)v; cb_refuse(p); }
LEDGER_CBOR_REFUSE_CB(cb_refuse_tag, uint64_t)
LEDGER_CBOR_REFUSE_CB(cb_refuse_float, float)

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
