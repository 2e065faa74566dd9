/*
 * payhook provider SDK: the generic pieces every provider needs, so that a
 * provider's own file holds only what is specific to it.
 *
 * All functions are sans-I/O and thread-safe; none keeps global state.
 * Functions return enum ph_status (0 on success) and fill a ph_diag when
 * given one.  Buffers fed by outside input have a maximum given by the
 * caller; exceeding it is PH_E_TOOBIG, never a reallocation past it.
 */
#ifndef PAYHOOK_SDK_H
#define PAYHOOK_SDK_H

#include <stddef.h>
#include <stdint.h>

#include <payhook/provider.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Diagnostics ------------------------------------------------------ */

/* Formats into diag (if not NULL) and returns status, for one-line fails. */
int ph_fail(struct ph_diag *diag, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- Configuration ---------------------------------------------------- */

/* The value configured for key name, or NULL if the plugin declared none. */
const struct ph_conf_value *ph_conf_get(const struct ph_conf *conf,
    const char *name);

/* ---- Bounded byte buffer --------------------------------------------- */

struct ph_buf {
	char *data;		/* NUL-terminated; owned, freed by ph_buf_free */
	size_t len;
	size_t cap;
	size_t max;		/* bytes the buffer may ever hold */
	int err;		/* sticky: first failure of an append */
};

void ph_buf_init(struct ph_buf *b, size_t max);
int ph_buf_append(struct ph_buf *b, const void *p, size_t n);
int ph_buf_puts(struct ph_buf *b, const char *s);
int ph_buf_printf(struct ph_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void ph_buf_free(struct ph_buf *b);

/* ---- Key/value lists (decoded XML fields, form fields) ---------------- */

struct ph_kv {
	char *key;		/* NUL-terminated */
	char *val;		/* NUL-terminated; may contain no NUL */
	size_t val_len;
};

struct ph_kvlist {
	struct ph_kv *items;	/* owned */
	size_t n;
	size_t cap;
	size_t max;		/* most fields accepted */
};

void ph_kvlist_init(struct ph_kvlist *l, size_t max);
/* Adds a copy; a key already present is PH_E_MALFORMED (pollution). */
int ph_kvlist_add(struct ph_kvlist *l, const char *key, size_t key_len,
    const char *val, size_t val_len, struct ph_diag *diag);
/* The value of key, or NULL; points into l. */
const char *ph_kvlist_get(const struct ph_kvlist *l, const char *key);
void ph_kvlist_free(struct ph_kvlist *l);

/*
 * The canonical sign string shared by WeChat v2, UnionPay and Alipay:
 * every field whose key is not in skip[] (NULL-terminated, may be NULL),
 * whose value is non-empty (when skip_empty), sorted by key byte-wise,
 * joined as k=v&k=v with raw values.  Appends to out.
 */
int ph_canonical_join(const struct ph_kvlist *l, const char *const *skip,
    int skip_empty, struct ph_buf *out);

/* ---- XML (flat documents like WeChat v2's <xml><a>1</a>...</xml>) ---- */

struct ph_xml_limits {
	size_t max_bytes;	/* whole document */
	size_t max_fields;	/* child elements of the root */
	size_t max_value;	/* bytes of one value */
};

/*
 * Parses a flat XML document with libxml2: no DTD, no entity expansion,
 * no network.  A DOCTYPE or ENTITY declaration, a child with element
 * children (depth > 2), a repeated field, a root not named root_name
 * (unless root_name is NULL) or anything not well-formed is refused.
 * Text and CDATA values are both accepted.  Fills out (caller frees).
 */
int ph_xml_parse_flat(const unsigned char *doc, size_t len,
    const char *root_name, const struct ph_xml_limits *lim,
    struct ph_kvlist *out, struct ph_diag *diag);

/*
 * Writes a flat XML document <root><k><![CDATA[v]]></k>...</root> from
 * pairs; a value containing "]]>" is PH_E_FIELD.
 */
int ph_xml_write_flat(const char *root_name, const struct ph_kvlist *l,
    struct ph_buf *out);

/* ---- Forms (application/x-www-form-urlencoded) ------------------------ */

struct ph_form_limits {
	size_t max_bytes;	/* whole body */
	size_t max_fields;	/* k=v pairs */
	size_t max_value;	/* bytes of one decoded name or value */
};

/*
 * Decodes a form body: pairs split on '&', name and value on the first
 * '=', '+' is a space, %XX a byte (RFC 3986 percent-decoding, by
 * libcurl).  Refused: a '%' not followed by two hex digits, an empty pair
 * (leading, trailing or doubled '&'), a pair without '=', an empty name,
 * a name given twice (compared after decoding), a NUL byte, and anything
 * past the limits.  Values keep their decoded bytes as they are (no
 * charset is assumed); an empty value is kept.  An empty body is no
 * fields.  Fills out (caller frees, also on failure it is left empty).
 */
int ph_form_parse(const unsigned char *body, size_t len,
    const struct ph_form_limits *lim, struct ph_kvlist *out,
    struct ph_diag *diag);

/*
 * Appends l as a form body, k=v joined with '&' in list order, names and
 * values escaped by libcurl (everything but ALPHA DIGIT - . _ ~ as %XX).
 */
int ph_form_write(const struct ph_kvlist *l, struct ph_buf *out);

/* Appends s percent-encoded: everything but the RFC 3986 unreserved
 * characters (ALPHA DIGIT - . _ ~) as %XX, for URL paths and queries. */
int ph_buf_pct(struct ph_buf *b, const char *s);

/* ---- Digests, MACs, signatures (OpenSSL libcrypto) -------------------- */

#define PH_MD5_LEN	16
#define PH_SHA1_LEN	20
#define PH_SHA256_LEN	32

int ph_md5(const void *p, size_t n, unsigned char out[PH_MD5_LEN]);
int ph_sha1(const void *p, size_t n, unsigned char out[PH_SHA1_LEN]);
int ph_sha256(const void *p, size_t n, unsigned char out[PH_SHA256_LEN]);
int ph_hmac_sha256(const void *key, size_t key_len, const void *p, size_t n,
    unsigned char out[PH_SHA256_LEN]);

/* Hex encoding; out must hold 2 * n + 1 bytes. */
void ph_hex_upper(const unsigned char *p, size_t n, char *out);
void ph_hex_lower(const unsigned char *p, size_t n, char *out);

/* Constant-time equality of two byte strings (lengths compared first;
 * the length is not secret). */
int ph_ct_equal(const void *a, size_t alen, const void *b, size_t blen);
/* As ph_ct_equal, ASCII case-insensitive, for hex signatures. */
int ph_ct_equal_nocase(const char *a, size_t alen, const char *b, size_t blen);

/* Base64 (standard alphabet, padded).  decode refuses bad input; out_max
 * bounds the decoded size. */
int ph_base64_decode(const char *in, size_t len, unsigned char *out,
    size_t out_max, size_t *out_len);
int ph_base64_encode(const unsigned char *in, size_t len, struct ph_buf *out);

/* RSA PKCS#1 v1.5 verification of sig over msg with a PEM public key or
 * certificate.  digest is "SHA1" or "SHA256".  PH_OK only when valid. */
int ph_rsa_verify_pem(const char *digest, const unsigned char *pem,
    size_t pem_len, const void *msg, size_t msg_len,
    const unsigned char *sig, size_t sig_len, struct ph_diag *diag);

/* ---- Money and time --------------------------------------------------- */

/* Largest amount payhook accepts, in minor units (10^15 fen). */
#define PH_AMOUNT_MAX 1000000000000000LL

/*
 * Parses a non-negative integer amount in minor units: ASCII digits only,
 * no sign, no spaces, no leading zeros (except "0"), at most PH_AMOUNT_MAX.
 */
int ph_money_parse_minor(const char *s, size_t len, int64_t *out);

/*
 * Parses a decimal major-unit amount ("12.34", "0.01", "5") into minor
 * units with the given scale (2 for CNY): at most scale decimals, no sign,
 * no exponent, at most PH_AMOUNT_MAX after scaling.
 */
int ph_money_parse_decimal(const char *s, size_t len, int scale,
    int64_t *out);

/* Validates an ISO 4217 alphabetic code: three uppercase ASCII letters. */
int ph_currency_valid(const char *s);

/*
 * Parses "yyyyMMddHHmmss" in the given fixed UTC offset (seconds east;
 * 28800 for Beijing time) into unix seconds.  Field ranges are checked.
 */
int ph_time_parse_compact(const char *s, long utc_offset, int64_t *out);

/* ---- Validation of provider fields ------------------------------------ */

/*
 * True when s (len bytes) is 1..max bytes, each in the set
 * [A-Za-z0-9] or one of extra (may be NULL).
 */
int ph_token_valid(const char *s, size_t len, size_t max, const char *extra);

/* Copies a validated token into a fixed field of size cap (with NUL);
 * PH_E_FIELD if it does not fit or is invalid. */
int ph_copy_token(char *dst, size_t cap, const char *src, const char *extra,
    const char *field, struct ph_diag *diag);

/* ---- JSON (jansson) ---------------------------------------------------- */

/*
 * JSON from providers, parsed once and strictly with jansson.  Documents
 * are jansson's json_t, named here by its struct tag so that this header
 * does not need <jansson.h>; free one with json_decref().  Members are
 * found by a dotted path from an object ("amount.total"); diagnostics
 * name the path.  A member whose value is JSON null counts as absent.
 */
struct json_t;

struct ph_json_limits {
	size_t max_bytes;	/* whole document */
	size_t max_depth;	/* nesting: 1 is an object of scalars */
};

/*
 * Parses a document of at most lim->max_bytes: duplicate keys (after
 * unescaping), invalid UTF-8, \u0000, trailing bytes, a top level that is
 * not an object, and nesting deeper than lim->max_depth are refused.
 * *out is the document (caller json_decref()s it).
 */
int ph_json_parse(const unsigned char *doc, size_t len,
    const struct ph_json_limits *lim, struct json_t **out,
    struct ph_diag *diag);

/* The member at path, or NULL; points into obj. */
const struct json_t *ph_json_lookup(const struct json_t *obj,
    const char *path);

/*
 * A required string of at most max bytes (empty allowed); *out points
 * into obj, *len (may be NULL) is its length.  The opt variant returns
 * PH_OK with *out NULL when the member is absent; present but not a
 * string is an error in both.
 */
int ph_json_get_string(const struct json_t *obj, const char *path,
    size_t max, const char **out, size_t *len, struct ph_diag *diag);
int ph_json_opt_string(const struct json_t *obj, const char *path,
    size_t max, const char **out, size_t *len, struct ph_diag *diag);

/* A required identifier (as ph_token_valid, at most cap - 1 bytes)
 * copied into dst. */
int ph_json_copy_token(const struct json_t *obj, const char *path,
    char *dst, size_t cap, const char *extra, struct ph_diag *diag);

/*
 * A required JSON integer in [min, max].  A real (12.5, 1e2, 100.0) or a
 * string ("12") is refused, as is a number jansson cannot hold.
 */
int ph_json_get_int(const struct json_t *obj, const char *path,
    int64_t min, int64_t max, int64_t *out, struct ph_diag *diag);

/* An amount in minor units: a JSON integer from 0 to PH_AMOUNT_MAX. */
int ph_json_get_amount(const struct json_t *obj, const char *path,
    int64_t *out, struct ph_diag *diag);

/* A required true or false. */
int ph_json_get_bool(const struct json_t *obj, const char *path, int *out,
    struct ph_diag *diag);

/* A required object member; *out points into obj. */
int ph_json_get_object(const struct json_t *obj, const char *path,
    const struct json_t **out, struct ph_diag *diag);

#ifdef __cplusplus
}
#endif

#endif /* PAYHOOK_SDK_H */
