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

/*
 * Unit tests build a provider once more with -DPH_UNITTEST, as curl does
 * with UNITTEST, so that they can call the functions they test: mark
 * those PH_UNITTEST_STATIC, declare them in the provider's test header,
 * and they stay static (invisible) in the plugin itself.
 */
#ifdef PH_UNITTEST
#define PH_UNITTEST_STATIC
#else
#define PH_UNITTEST_STATIC static
#endif

/* ---- Diagnostics ------------------------------------------------------ */

/* Formats into diag (if not NULL) and returns status, for one-line fails. */
int ph_fail(struct ph_diag *diag, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- Configuration ---------------------------------------------------- */

/* The value configured for key name, or NULL if the plugin declared none. */
const struct ph_conf_value *ph_conf_get(const struct ph_conf *conf,
    const char *name);
/* The same, NULL also when the profile does not give it (nor a default). */
const struct ph_conf_value *ph_conf_given(const struct ph_conf *conf,
    const char *name);
/* A key read from a file as providers hand API keys out: min to max bytes
 * of printable ASCII without spaces.  PH_E_CONFIG naming what (the
 * configuration key) otherwise; checked when the profile is made, since
 * a wrong key fails every message later. */
int ph_secret_check(const struct ph_blob *b, size_t min, size_t max,
    const char *what, struct ph_diag *diag);
/* A required configuration key read as ph_copy_token() into dst (cap
 * bytes): PH_E_CONFIG, "<name> is required" when the profile does not
 * give it, or the reason it is not a token of [A-Za-z0-9] and extra. */
int ph_conf_token(const struct ph_conf *conf, const char *name, char *dst,
    size_t cap, const char *extra, struct ph_diag *diag);
/* True when s is one of set (NULL-terminated). */
int ph_in(const char *s, const char *const *set);

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
/* Makes room for n more bytes (and the NUL) at once, so that the appends
 * that follow need no more allocation; fails as an append of n would. */
int ph_buf_reserve(struct ph_buf *b, size_t n);
int ph_buf_puts(struct ph_buf *b, const char *s);
int ph_buf_printf(struct ph_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void ph_buf_free(struct ph_buf *b);

/* Copies src (NULL: as "") into dst of size bytes, cut to fit and always
 * NUL-terminated when size > 0; returns strlen(src), so that a result of
 * size or more says it was cut (OpenBSD's strlcpy). */
size_t ph_strlcpy(char *dst, const char *src, size_t size);

/* ---- Key/value lists (decoded XML fields, form fields) ---------------- */

struct ph_kv {
	char *key;		/* NUL-terminated */
	char *val;		/* NUL-terminated; may contain no NUL; one
				 * allocation with key, the list's to free */
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
/* A required amount in minor units (ph_money_parse_minor()) in field
 * key; an empty value is missing.  PH_E_FIELD, "<key>: missing" or
 * "<key>: invalid", otherwise. */
int ph_kv_amount(const struct ph_kvlist *l, const char *key, int64_t *out,
    struct ph_diag *diag);

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
 * Parses a flat XML document: an optional XML declaration (version 1.0,
 * UTF-8), one root element and its child elements, each holding text,
 * CDATA, the five predefined entities and character references, with
 * line ends read as XML 1.0 has them (CR LF and CR are LF).  A DOCTYPE or
 * ENTITY declaration, attributes, namespaces, comments, processing
 * instructions, a child with element children, a name outside ASCII
 * [A-Za-z_][A-Za-z0-9_.-]*, a repeated field, a root not named
 * root_name (unless root_name is NULL) or anything not well-formed is
 * refused.  Fills out (caller frees).
 */
int ph_xml_parse_flat(const unsigned char *doc, size_t len,
    const char *root_name, const struct ph_xml_limits *lim,
    struct ph_kvlist *out, struct ph_diag *diag);

/*
 * Writes a flat XML document <root><k><![CDATA[v]]></k>...</root> from
 * pairs; a value containing "]]>" or a carriage return (which a reader
 * takes for a line feed) is PH_E_FIELD.
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

/* Whether a Content-Type is application/x-www-form-urlencoded, with any
 * parameters; NULL is not. */
int ph_is_form(const char *content_type);

/*
 * The form a notification's body holds: refused (PH_E_MALFORMED) when it
 * has a Content-Type that is not a form, as a servlet's getParameter
 * reads the body of a form only; then ph_form_parse().
 */
int ph_form_request(const struct ph_request *req,
    const struct ph_form_limits *lim, struct ph_kvlist *out,
    struct ph_diag *diag);

/*
 * Appends l as a form body, k=v joined with '&' in list order, names and
 * values escaped by libcurl (everything but ALPHA DIGIT - . _ ~ as %XX).
 */
int ph_form_write(const struct ph_kvlist *l, struct ph_buf *out);

/* The order a form notification names in field, read without verifying
 * it (a provider's notify_hint): for the core to query, never to apply. */
int ph_form_hint(const struct ph_request *req,
    const struct ph_form_limits *lim, const char *field, const char *extra,
    char order_id[PH_ID_MAX + 1]);

/* Appends s percent-encoded: everything but the RFC 3986 unreserved
 * characters (ALPHA DIGIT - . _ ~) as %XX, for URL paths and queries. */
int ph_buf_pct(struct ph_buf *b, const char *s);

/* ---- HTTP messages ------------------------------------------------------ */

struct json_t;

/*
 * The one value of header name in h (names compared without case).  A
 * header sent twice is ambiguous (which copy was signed?) and, like a
 * missing or empty one, PH_E_SIGNATURE.
 */
int ph_header_get(const struct ph_header *h, size_t nh, const char *name,
    const char **value, struct ph_diag *diag);

/* Fills an outbound request: method, path, content type (NULL: none) and
 * body (NULL: left as it is; a body's sticky error is returned).
 * PH_E_TOOBIG when one does not fit. */
int ph_request_set(struct ph_http_request *out, const char *method,
    const char *path, const char *content_type, const struct ph_buf *body);
/* Adds header name with the value prefix (may be NULL) and value. */
int ph_request_header(struct ph_http_request *out, const char *name,
    const char *prefix, const char *value);

/* The text of a refusal or retry answer: the printable ASCII of reason,
 * or "invalid notification" / "temporarily unavailable" when none. */
void ph_ack_reason(enum ph_ack_kind kind, const char *reason, char *dst,
    size_t cap);
/* out as status and the compact text of doc (taken: json_decref'd),
 * application/json.  Without doc, or when it does not fit, out holds the
 * status alone and the error is returned. */
int ph_response_json(struct ph_response *out, int status, struct json_t *doc);
/*
 * A JSON provider's answer to a refusal (400) or a retry (500):
 * {code_key: code, text_key: the reason's text}, without code_key when it
 * is NULL; any other kind is 500 with no body.
 */
void ph_ack_json_failure(struct ph_response *out, enum ph_ack_kind kind,
    const char *reason, const char *code_key, const char *code,
    const char *text_key);

/*
 * An absolute URL split by ph_url_split(); the pointers are into the URL.
 */
struct ph_url {
	int https;		/* 1 for https://, 0 for http:// */
	const char *host;	/* a name, or an IPv6 literal with its [] */
	size_t host_len;
	unsigned port;		/* as given, else 443 or 80 */
	int port_given;
	const char *target;	/* path and query: the rest of the URL, */
	size_t target_len;	/* empty or from its '/' or '?' */
};

/*
 * Splits url (len bytes) strictly: https:// or http:// in lower case, a
 * host of letters, digits, '.' and '-' (or an IPv6 literal in []), an
 * optional port from 1 to 65535, then the path and query.  Refused, the
 * diagnostic naming what: an empty URL or one of PH_HTTP_PATH_MAX bytes
 * or more (PH_E_TOOBIG), a blank, control, non-ASCII, '\', '"' or '#'
 * byte, another scheme, user information ('@' before the path), no host
 * and a bad port (PH_E_FIELD).
 */
int ph_url_split(const char *url, size_t len, const char *what,
    struct ph_url *out, struct ph_diag *diag);

/*
 * A provider's plain-text answer: status 200, 400 or 500 for PH_ACK_OK,
 * PH_ACK_REFUSED and PH_ACK_RETRY, text/plain, its body the printable
 * ASCII of text (may be NULL: empty) up to PH_ACK_TEXT_MAX bytes; any
 * other kind is 500 with no body.
 */
#define PH_ACK_TEXT_MAX	128
void ph_ack_text(struct ph_response *out, enum ph_ack_kind kind,
    const char *text);

/* Provider text made safe for a diagnostic: printable ASCII kept, each
 * UTF-8 character shown as '?', at most max bytes, "-" when nothing is
 * left. */
void ph_diag_text(char *dst, size_t cap, const char *src, size_t max);

/* ---- Table entries ----------------------------------------------------- */

/*
 * An entry's last word: returns rc, having zeroed the size bytes at out
 * (when not NULL) if rc is a failure, so that a failed call never hands
 * the core an event, request or download half filled:
 *	return ph_clear_on_fail(rc, ev, sizeof(*ev));
 */
int ph_clear_on_fail(int rc, void *out, size_t size);

/* A notification's body, before anything reads it: none or an empty one
 * is PH_E_MALFORMED "empty body", more than max bytes PH_E_TOOBIG. */
int ph_body_check(const struct ph_request *req, size_t max,
    struct ph_diag *diag);

/* The order a query, close or refund names: an id of 1 to max bytes of
 * [A-Za-z0-9] and extra, else PH_E_FIELD "order id is not a valid
 * <what>". */
int ph_order_check(const struct ph_order_ref *order, size_t max,
    const char *extra, const char *what, struct ph_diag *diag);

/* A state a provider names (a trade_state, a refund status) and the
 * event it becomes; a table of them ends with name NULL. */
struct ph_state {
	const char *name;
	enum ph_event_kind kind;
};

/* The entry of table named name (compared exactly), or NULL when there
 * is none or name is NULL. */
const struct ph_state *ph_state_find(const struct ph_state *table,
    const char *name);

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

/* Overwrites n bytes at p with zeros in a way the compiler keeps: for
 * keys, secrets and decrypted plaintext before they are freed. */
void ph_cleanse(void *p, size_t n);

/* ---- Keys and RSA signatures ------------------------------------------ */

/*
 * An RSA key read once per profile (opaque; free with ph_key_free).  Keys
 * of another type, or shorter than PH_RSA_MIN_BITS, are refused when
 * loaded.  Signatures are PKCS#1 v1.5; digest is "SHA256" or "SHA1".
 */
struct ph_key;

#define PH_RSA_MIN_BITS	2048
#define PH_RSA_SIG_MAX	1024	/* bytes of a signature, RSA-8192 */

enum ph_key_form {
	PH_KEY_PUBLIC,		/* PEM "PUBLIC KEY" (SubjectPublicKeyInfo) */
	PH_KEY_PUBLIC_ANY,	/* that, "RSA PUBLIC KEY" (PKCS#1) or the key
				 * of a "CERTIFICATE" */
	PH_KEY_PRIVATE,		/* "PRIVATE KEY" (PKCS#8) or "RSA PRIVATE KEY"
				 * (PKCS#1), unencrypted */
	PH_KEY__MAX
};

/* Flags of ph_key_load; without them, exactly one PEM block with only
 * whitespace around it and no headers (so no encrypted key). */
#define PH_KEY_LENIENT	0x01	/* OpenSSL's own PEM reading, which passes
				 * over text around the block (the "Bag
				 * Attributes" of a PKCS#12 export) */
#define PH_KEY_BASE64	0x02	/* lenient, and the DER in bare base64
				 * (how some consoles hand keys out) */

/*
 * Reads the key in b of the given form; what (the configuration key)
 * names it in diagnostics, which never quote the file.  *out is the
 * caller's (ph_key_free).  PH_E_CONFIG when it is not such a key.
 */
int ph_key_load(const struct ph_blob *b, enum ph_key_form form,
    unsigned flags, const char *what, struct ph_key **out,
    struct ph_diag *diag);
void ph_key_free(struct ph_key *k);
/* Bytes of the key's signatures; 0 for NULL. */
size_t ph_key_size(const struct ph_key *k);

/* Appends the base64 of k's signature of msg to out. */
int ph_rsa_sign(const struct ph_key *k, const char *digest, const void *msg,
    size_t len, struct ph_buf *out, struct ph_diag *diag);
/* PH_OK only when sig (exactly ph_key_size(k) bytes) is k's signature of
 * msg; PH_E_SIGNATURE when it is not. */
int ph_rsa_verify(const struct ph_key *k, const char *digest, const void *msg,
    size_t msg_len, const unsigned char *sig, size_t sig_len,
    struct ph_diag *diag);
/* As ph_rsa_verify with a key read from pem as PH_KEY_PUBLIC_ANY, for a
 * key that comes with the message. */
int ph_rsa_verify_pem(const char *digest, const unsigned char *pem,
    size_t pem_len, const void *msg, size_t msg_len,
    const unsigned char *sig, size_t sig_len, struct ph_diag *diag);

/* ---- Certificates (X.509) --------------------------------------------- */

struct ph_cert;		/* opaque; free with ph_cert_free */
struct ph_trust;	/* roots and intermediates; free with ph_trust_free */

/*
 * Certificates from PEM text: at least one and at most max "CERTIFICATE"
 * blocks, nothing but whitespace around them, no headers, DER without
 * trailing bytes.  Fills certs[] (caller frees each) and *n; anything
 * else is PH_E_MALFORMED, the diagnostic naming what.
 */
int ph_cert_load(const unsigned char *pem, size_t len, struct ph_cert **certs,
    size_t max, size_t *n, const char *what, struct ph_diag *diag);
void ph_cert_free(struct ph_cert *c);
/* The certificate's key, or NULL when it is not RSA of PH_RSA_MIN_BITS
 * or more; points into c. */
const struct ph_key *ph_cert_key(const struct ph_cert *c);
/* The serial number in decimal (as Java's BigInteger.toString()), or with
 * hex in upper-case hexadecimal without leading zeros (a zero or negative
 * serial is then PH_E_MALFORMED); PH_E_TOOBIG when it does not fit cap. */
int ph_cert_serial(const struct ph_cert *c, int hex, char *out, size_t cap);
/* notBefore and notAfter in unix seconds. */
int ph_cert_validity(const struct ph_cert *c, int64_t *not_before,
    int64_t *not_after);
/* True unless a key usage extension leaves out both digitalSignature and
 * nonRepudiation. */
int ph_cert_can_sign(const struct ph_cert *c);
/* True when priv is the private key of c's public key. */
int ph_cert_has_key(const struct ph_cert *c, const struct ph_key *priv);
/* The subject's one CN as UTF-8 without NUL; *out is malloc'd (caller
 * frees).  No CN, two, or one that does not convert: PH_E_MALFORMED. */
int ph_cert_subject_cn(const struct ph_cert *c, char **out, const char *what,
    struct ph_diag *diag);

int ph_trust_new(struct ph_trust **out);
void ph_trust_free(struct ph_trust *t);
/* Adds c (the caller keeps it) as a trusted root, or as an untrusted
 * intermediate a chain may pass through. */
int ph_trust_add(struct ph_trust *t, const struct ph_cert *c, int root);
/*
 * PH_OK when c chains to a root of t through t's intermediates at time
 * now, with the window in which every certificate of the chain is valid
 * in *not_before and *not_after; PH_E_SIGNATURE, naming what and the
 * reason, when it does not.  c must be no CA, and where t has
 * intermediates it must be issued by one of them (a certificate a root
 * issued directly is refused).
 */
int ph_trust_verify(const struct ph_trust *t, const struct ph_cert *c,
    int64_t now, int64_t *not_before, int64_t *not_after, const char *what,
    struct ph_diag *diag);

/* ---- Ciphers ------------------------------------------------------------ */

#define PH_AES256_KEY_LEN	32
#define PH_AES_BLOCK		16
#define PH_GCM_TAG_LEN		16

/*
 * AES-256-GCM (RFC 5116) decryption of ct, whose last PH_GCM_TAG_LEN
 * bytes are the tag, with aad (fed even when empty).  out holds
 * ct_len - PH_GCM_TAG_LEN bytes.  PH_E_SIGNATURE when the tag does not
 * check: then nothing of out is to be looked at (it is zeroed).
 */
int ph_aes256gcm_decrypt(const unsigned char key[PH_AES256_KEY_LEN],
    const unsigned char *iv, size_t iv_len, const void *aad, size_t aad_len,
    const unsigned char *ct, size_t ct_len, unsigned char *out,
    size_t *out_len, struct ph_diag *diag);
/*
 * AES-256-ECB decryption with PKCS#7 padding of whole blocks; out holds
 * ct_len + PH_AES_BLOCK bytes.  PH_E_SIGNATURE for bad padding or
 * length, which is all the authentication ECB has.
 */
int ph_aes256ecb_decrypt(const unsigned char key[PH_AES256_KEY_LEN],
    const unsigned char *ct, size_t ct_len, unsigned char *out,
    size_t *out_len, struct ph_diag *diag);

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
/*
 * RFC 3339 as WeChat Pay v3 writes it, "2018-06-08T10:34:56+08:00"
 * (NUL-terminated): an upper-case T, optional fractional seconds
 * (dropped), then Z or an offset of less than 24 hours; field ranges
 * checked.  Unix seconds in *out.
 */
int ph_time_parse_rfc3339(const char *s, int64_t *out);
/* Unix seconds written as 1 to 12 decimal digits, no sign. */
int ph_time_parse_unix(const char *s, size_t len, int64_t *out);

/* The same for "yyyy-MM-dd HH:mm:ss" (len bytes, not NUL-terminated). */
int ph_time_parse_dashed(const char *s, size_t len, long utc_offset,
    int64_t *out);

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

/*
 * ev's order id, amount and currency from the order a query or a close was
 * about, for an answer that does not carry them (an order not paid, not
 * found, closed): the id checked as ph_copy_token with extra, the currency
 * as ph_currency_valid; PH_E_FIELD when either is not.
 */
int ph_event_from_order(struct ph_event *ev, const struct ph_order_ref *order,
    const char *extra, struct ph_diag *diag);

/* Sets ev->dedup_key to the parts given, up to a NULL, joined with ':'
 * ("pay", txn_id: "pay:<txn_id>"); PH_E_FIELD, and no key, when they do
 * not fit. */
int ph_dedup_key(struct ph_event *ev, struct ph_diag *diag, const char *part,
    ...) __attribute__((sentinel));

/* ---- Statements (statement_line) --------------------------------------- */

/*
 * One step of a provider's statement reader: state is its own (the bytes
 * ph_statement_drive keeps between lines), line NULL at the end of the
 * statement.  Fills ev for a fact; returns PH_OK or refuses the line.
 */
typedef int (*ph_statement_step_fn)(const void *ctx, void *state,
    const struct ph_statement *st, const char *line, size_t len,
    struct ph_event *ev, struct ph_diag *diag);

/*
 * The opening and closing every statement_line() shares.  Checks the
 * arguments; starts ev as PH_EV_IGNORED; loads state (size bytes, its
 * first four bytes a uint32_t magic) from st, zeroed and stamped with
 * magic on the first line; drops the line's CR and refuses a NUL byte;
 * calls step.  On success the state is kept and a payment or refund that
 * succeeded is counted into st->facts and st->total; on failure ev is
 * zeroed and the state is left as it was.
 */
int ph_statement_drive(const void *ctx, struct ph_statement *st, void *state,
    size_t size, uint32_t magic, ph_statement_step_fn step,
    const char *line, size_t len, struct ph_event *ev, struct ph_diag *diag);

/*
 * CSV statements of payhook's own layout, for providers that publish no
 * statement file: a header line naming the columns (UTF-8, an optional
 * BOM; columns found by name, others ignored), one line per fact, no
 * quoting, and a last line "total,<rows>,<sum>" so that a truncated file
 * is refused.
 */
#define PH_CSV_FIELDS_MAX	32	/* fields of a line */
#define PH_CSV_NAMES_MAX	16	/* columns a layout names */

/* A data line: its fields in file order (not NUL-terminated), and for
 * each of the layout's names the index of its field, or -1. */
struct ph_csv_row {
	const char *f[PH_CSV_FIELDS_MAX];
	size_t n[PH_CSV_FIELDS_MAX];
	int nf;
	int col[PH_CSV_NAMES_MAX];
};

/* Reads one data line into ev (its amount is summed for the total line);
 * no is the line's number, for diagnostics. */
typedef int (*ph_csv_row_fn)(const void *ctx, const struct ph_csv_row *row,
    uint64_t no, struct ph_event *ev, struct ph_diag *diag);

struct ph_csv_layout {
	const char *const *names;	/* columns read, by the row's enum */
	int nnames;			/* at most PH_CSV_NAMES_MAX */
	unsigned optional;		/* bit i: names[i] may be missing */
	const char *sum_of;		/* the summed column, for diagnostics */
	ph_csv_row_fn row;
};

/* statement_line() for a CSV statement of layout lay; ctx goes to row. */
int ph_csv_statement_line(const struct ph_csv_layout *lay, const void *ctx,
    struct ph_statement *st, const char *line, size_t len,
    struct ph_event *ev, struct ph_diag *diag);

/* Splits on ','; the number of fields, or -1 past max or on a quote. */
int ph_csv_split(const char *line, size_t len, const char **f, size_t *n,
    int max);
/* Copies a field of 1 to max bytes valid as ph_token_valid(extra) into
 * dst (NUL-terminated, cap bytes); -1 when it is not one or does not fit. */
int ph_csv_token(const char *f, size_t n, size_t max, const char *extra,
    char *dst, size_t cap);

/* The field of a data line under the layout's column col, as
 * ph_csv_token() into dst; PH_E_MALFORMED "line <no>: <name> is invalid"
 * when it is not one, or the line has no such column. */
int ph_csv_row_token(const struct ph_csv_row *r, int col, const char *name,
    uint64_t no, size_t max, const char *extra, char *dst, size_t cap,
    struct ph_diag *diag);

/* ---- JSON (jansson) ---------------------------------------------------- */

/*
 * JSON from providers, parsed once and strictly with jansson.  Documents
 * are jansson's json_t, named here by its struct tag so that this header
 * does not need <jansson.h>; free one with json_decref().  Members are
 * found by a dotted path from an object ("amount.total"); diagnostics
 * name the path.  A member whose value is JSON null counts as absent.
 */

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

/* Non-zero when v's objects and arrays nest max deep at the most (an
 * object of scalars is 1; a string or number 0), as ph_json_parse
 * counts. */
int ph_json_depth_within(const struct json_t *v, size_t max);

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
