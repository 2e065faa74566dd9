/*
 * Helpers the provider tests share (tests/unit/lib/helpers.c, linked as
 * tests/unit/lib/libhelpers.la): RSA keys, certificates and PEM made on the
 * spot, signatures the way providers make them, form encoding, and the
 * struct ph_conf a profile is made from.  They abort() on any failure of
 * the machinery: a test cannot go on without its keys.  Each returned
 * string is malloc'd (the caller frees it).  TAP itself is tap.h.
 */
#ifndef PH_TEST_HELPERS_H
#define PH_TEST_HELPERS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <payhook/provider.h>

/* An RSA key of bits bits. */
EVP_PKEY *th_rsa_key(int bits);
/* PEM text of a key: "PUBLIC KEY", or with priv "PRIVATE KEY" (PKCS#8). */
char *th_pem_key(EVP_PKEY *k, int priv);
/* PEM text of a certificate. */
char *th_pem_cert(X509 *x);
/* The key of PEM "PRIVATE KEY" or "RSA PRIVATE KEY" text. */
EVP_PKEY *th_key_of_pem(const char *pem);
/* The base64 between a PEM text's armour, without newlines. */
char *th_pem_bare(const char *pem);

/* A certificate's subject: (field, value) pairs, NULL-terminated. */
struct th_cert {
	EVP_PKEY *key;			/* its key */
	const char *const *name;	/* subject */
	X509 *issuer;			/* NULL: self-signed */
	EVP_PKEY *issuer_key;
	const char *serial_hex;		/* serial number, in hex */
	int64_t not_before, not_after;
	int ca;				/* 1: a CA (keyCertSign); 2: a CA
					 * that may sign too; 0: a signer
					 * (digitalSignature) */
	int no_ext;			/* no extensions at all */
};
X509 *th_cert(const struct th_cert *c);
/* The same, as PEM text. */
char *th_cert_pem(const struct th_cert *c);

/* base64 of the PKCS#1 v1.5 signature of p by key, digest "SHA256" or
 * "SHA1", into out (at least 1400 bytes for RSA-8192). */
void th_rsa_sign(EVP_PKEY *key, const char *digest, const void *p, size_t n,
    char *out);
/* True when b64 is key's SHA256 signature of p. */
int th_rsa_check(EVP_PKEY *key, const void *p, size_t n, const char *b64);

/* Form-encoded as a browser does: unreserved as is, space as '+', the
 * rest %XX.  Returns the length written to out (3 * n at most). */
size_t th_form_encode(const char *p, size_t n, char *out);

/*
 * The fields of a message a test builds (UnionPay, Alipay forms, WeChat
 * XML): set in any order, a value NULL removes its field; joined sorted by
 * name as the form providers sign, or rendered as a form body.
 */
struct th_field {
	char k[64];
	char v[4096];
	size_t len;
	int raw;		/* WeChat XML: written without CDATA (a new
				 * field starts without) */
};
struct th_note {
	struct th_field f[48];
	size_t n;
};
void th_note_set(struct th_note *n, const char *k, const char *v);
void th_note_set_bytes(struct th_note *n, const char *k, const char *v,
    size_t len);
const char *th_note_get(const struct th_note *n, const char *k);
/* Sets each field of kv, name then value, up to a NULL name; emptied
 * first with th_note_fill. */
void th_note_set_all(struct th_note *n, const char *const *kv);
void th_note_fill(struct th_note *n, const char *const *kv);
/* k=v&k=v sorted by name, leaving out skip[] (NULL-terminated) and, unless
 * with_empty, empty values; into out, its length returned. */
size_t th_note_join(const struct th_note *n, const char *const *skip,
    int with_empty, char *out, size_t cap);
/* The form body, names and values encoded, with the field dup=dupval once
 * more when dup is not NULL; its length returned. */
size_t th_note_form(const struct th_note *n, const char *dup,
    const char *dupval, char *out, size_t cap);

/*
 * The providers' published vectors (tests/vectors/, its README.md names
 * the source of each): the bytes of file rel under that folder, found
 * through top_srcdir as make check sets it, NUL-terminated, *len (may be
 * NULL) its length; malloc'd.  th_vector_note reads a vector's
 * {"fields": [[name, value], ...]} into n in the file's order.
 */
char *th_vector(const char *rel, size_t *len);
void th_vector_note(const char *rel, struct th_note *n);

/* A POST of len bytes of body with content type ct (NULL: none), received
 * at now: no headers, the rest empty. */
void th_post(struct ph_request *req, const char *ct, const void *body,
    size_t len, int64_t now);

/* The four headers signing a WeChat Pay APIv3 message, into h[0] to
 * h[3]: Wechatpay-Timestamp, -Nonce, -Signature and -Serial. */
void th_wx3_headers(struct ph_header *h, const char *ts, const char *nonce,
    const char *sig, const char *serial);

/* An answer of WeChat Pay APIv3: status and body, received at now, its
 * headers signing it with key at a fixed time and nonce and naming serial
 * (in.headers points at h: the struct must outlive the answer's use). */
struct th_wx3_answer {
	struct ph_http_response in;
	struct ph_header h[4];
	char sig[1400];
	char body[8192];
};
void th_wx3_answer(struct th_wx3_answer *a, EVP_PKEY *key,
    const char *serial, int status, const char *body, int64_t now);

/* An answer of status with len bytes of body, received at now: no
 * headers, the rest empty. */
void th_answer(struct ph_http_response *in, int status, const void *body,
    size_t len, int64_t now);

/* Hands p's parse_notify a POST of body with one Content-Type header
 * ct, received at now; diag is emptied first. */
int th_notify(const struct ph_provider *p, void *ctx, const void *body,
    size_t len, const char *ct, int64_t now, struct ph_event *ev,
    struct ph_diag *diag);

/* A statement fed line by line to p's statement_line, each line with
 * term appended, then its end: the result, the line that failed (0: the
 * end), the first four facts and the reader's counts. */
struct th_run {
	int rc;
	uint64_t fail_line;
	size_t nev;
	struct ph_event ev[4];
	struct ph_statement st;
};
void th_feed(const struct ph_provider *p, void *ctx,
    const char *const *lines, const char *term, struct th_run *r,
    struct ph_diag *diag);
/* Whether an acknowledgement's body, or an outgoing request's, is want
 * exactly. */
int th_ack_body_is(const struct ph_response *r, const char *want);
int th_req_body_is(const struct ph_http_request *r, const char *want);
/* The value of an outgoing request's header name, or NULL when it is absent
 * or sent more than once. */
const char *th_req_header(const struct ph_http_request *req,
    const char *name);

/* An order id of amount CNY minor units made at created_at, with no
 * txn_id and no attempt data: a static, good until the next call. */
struct ph_order_ref *th_order_ref(const char *id, int64_t amount,
    int64_t created_at);

/* An input a test hands over and the name of the check made of it. */
struct th_case {
	const char *in, *what;
};

/* A provider's state of an order and the event it becomes: a row of the
 * tests' state tables. */
struct th_state {
	const char *state;
	enum ph_event_kind kind;
};

/* A call context at now whose random bytes are first, first + 1, ...:
 * a nonce made of them is known. */
void th_call_ctx(struct ph_call_ctx *cc, int64_t now, unsigned int first);

/* Whether ev is all zero bytes (an event the plugin left alone). */
int th_event_empty(const struct ph_event *ev);
/* Whether a and b are one fact to the core: the same kind, dedup key,
 * order id, transaction id, amount and currency. */
int th_same_fact(const struct ph_event *a, const struct ph_event *b);

/* lines (NULL-terminated) with line k (0-based) replaced by repl, or
 * removed where repl is NULL: a static array, good until the next call
 * (at most 63 lines are kept). */
const char **th_variant(const char *const *lines, size_t k,
    const char *repl);

/* WeChat Pay's published test key (TV-3), as PKCS#8 and as its public
 * key: the merchant's key in the v3 tests, and the platform's too. */
extern const char th_tv3_priv_pem[];
extern const char th_tv3_pub_pem[];
/* The public key of TV-5 (doc/design/protocols.md §7), published for
 * checking its signature. */
extern const char th_tv5_pub_pem[];

/* The configuration of a profile, its values set by key name: names not
 * among the plugin's keys abort. */
#define TH_CONF_MAX 32
struct th_conf {
	struct ph_conf conf;
	struct ph_conf_value v[TH_CONF_MAX];
	struct ph_blob files[TH_CONF_MAX][8];
};
/* Empty: every key of p's table named, none present. */
void th_conf_init(struct th_conf *c, const struct ph_provider *p,
    const char *profile);
/* A present value whose text and bytes are both s (NULL: absent). */
void th_conf_set(struct th_conf *c, const char *name, const char *s);
/* A present value: str (NULL: the key is absent again). */
void th_conf_str(struct th_conf *c, const char *name, const char *str);
/* A present file value holding data (NULL: absent). */
void th_conf_file(struct th_conf *c, const char *name, const char *data);
/* A present number (INT or BOOL). */
void th_conf_num(struct th_conf *c, const char *name, long long num);
/* A present list of files, data NULL-terminated. */
void th_conf_files(struct th_conf *c, const char *name,
    const char *const *data);
/* The same of at most the first max of data (a profile's fixed array). */
void th_conf_files_n(struct th_conf *c, const char *name,
    const char *const *data, size_t max);

/* Hands the configuration c to p's profile_new, diag emptied first. */
int th_profile_new(const struct ph_provider *p, struct th_conf *c,
    void **ctx, struct ph_diag *diag);

/* The configuration of a WeChat Pay APIv2 profile of p: appid, mch_id,
 * the API key's file holding key, and sign_type. */
void th_wx2_conf(struct th_conf *c, const struct ph_provider *p,
    const char *profile, const char *appid, const char *mch_id,
    const char *key, const char *sign_type);

/* The configuration of a WeChat Pay APIv3 profile of p (api_version 3,
 * appid, mch_id, the APIv3 key's file holding apiv3_key) that trusts the
 * public key of TV-3 as the platform's, of id pub_id; with serial (not
 * NULL) TV-3 is the merchant's key too, its certificate of that serial. */
void th_wx3_conf(struct th_conf *c, const struct ph_provider *p,
    const char *profile, const char *appid, const char *mch_id,
    const char *apiv3_key, const char *pub_id, const char *serial);

/* Removes a test's scratch folder and all in it, unless KEEP_TMP is set in
 * the environment (to look at what a failing run left behind). */
void th_scratch_remove(const char *dir);

#endif /* PH_TEST_HELPERS_H */
