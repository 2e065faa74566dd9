/*
 * Helpers the provider tests share; see helpers.h.  OpenSSL is called
 * here directly: these make the keys, certificates and signatures a
 * provider is fed, independently of the SDK under test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "helpers.h"
#include "tap.h"

static char *
th_bio_string(BIO *b)
{
	char *p, *s;
	long n = BIO_get_mem_data(b, &p);

	if (n < 0 || (s = malloc((size_t)n + 1)) == NULL)
		abort();
	memcpy(s, p, (size_t)n);
	s[n] = '\0';
	BIO_free(b);
	return s;
}

/* WeChat Pay's published test key (TV-3). */
const char th_tv3_priv_pem[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCm2mb6q8gMKH/3\n"
	"CNTbpJAIrbqiBiQGEOtjGcBrDYltsGynWgNscqT7WvfzU14FQbYcQUC5T4Wvva7m\n"
	"i3fIp3OgX8VqMDNA0qebnr38Pe6kqiLyZgFpJPXlSKDyPyqhRbVTbXssvSMQeVKc\n"
	"dXeVxoNNeoOlNFHgF/P0io6AmAVnz+hN8SiZKuOsth5/zUTLGvtkgxBcQooQrtXh\n"
	"RcpLT798OyIb9xeJ2HO3xRtMv2+perEzb4gMibI74UBz+2QEbnkubPE+2jU2rRZu\n"
	"dnNEz/BPOt3Qj/w2V6/G0VumGDh6+UeMU0jv4aupHztWITC4Akn0l7lBCNy3lgl8\n"
	"VFaJnkIxAgMBAAECggEAYGL8aESB7NwciDWW2UdoWUsa7GxFtSdjAz2mFXGdeTsY\n"
	"mVh7b9OOkRGM+Qio4LqEHDBp1mMk5E/cUJwy1zw8pGGO5nfvs7u9TT3XnHaefIs4\n"
	"YvUgTYAneIuLRkXNN5rQU+CD7mVYczTSz0Vgjqo9wa1LjUz7G0xbBmJgTdMEFGJs\n"
	"eJjy6AbJo0CGIwp6HJbTm4CmOUgXnnDAIbEGTIRImkZFH/rzneIeR7oZ77FVwxr1\n"
	"CZB2gfRCov/yRPbw8vnryYkmvQ7D/ze3j5097vRg/MoDGBSdoOwcmo75vyofr0AS\n"
	"zytMjmHYyifqkf5slPropSiJeGf4p/7gtKyF6dE/XQKBgQDVAlJ+4U5ZVGOuDc3+\n"
	"sAhz8CTzgFNlq9vKuSoFK6hOz2L+cwj+E7NXGkOe2DsHHZNy2Xqxk7caKhPEp1z9\n"
	"hhpMpyLVMoFt6CKemyoRBWDCQwLLwem9SZF/IAyovBkLiH36P42Jm26gUkNMKC/5\n"
	"Zhtqxf6RZgRQzbVudJi47vIRCwKBgQDIh0+v27Oo+DM3fhObH4I1NrXpWOEGH7OQ\n"
	"G1dEsMuFYF4hjGhg0kBEP3w9vVdl2+mRllZKTsx9oqjb8OibPLLIH8xsdbAB0WLf\n"
	"JvjLu4wl/ILUzN1RI03dWnnv2EnEeQn6c3hizvrJ9wR5U4ue9RPVnQooJ0hZF1PU\n"
	"uCL5fWK3MwKBgElReU/PAYbh80WP3t3Rfbdaa32dKBeQ5iCLR5lsA4zM+YgX1HqQ\n"
	"EWTj126vgvHaDkyz6vWAoL/Sx+cirHFfXWIRDX5Q2hgYlQH+6qXdMgbrxeSYpHnQ\n"
	"/tHBGFpkFELSAnrGsVMyOwvYBO4LzyeLK9i+ufcWJFoj1FVmsMLHDG8tAoGARdbi\n"
	"iQQCoYG4DMarO2aQ6cmhN6EN1h0qY7EyBqlwaIZ0okiNfdMcMOjPc41DKCWcRmlO\n"
	"qlihXcxN9TQFPzO3rH1urAOdBjUPs1qWYhZyrDQyuLyVBBJApyxAtajloDjrob+f\n"
	"mQIvVDHk7ACN6xG+E7K6+9salnTKbJapD618uQMCgYBNy6XUvzLkP/A1U/UZdtcx\n"
	"l8GwU/dturLxz4CyGbqDw4ubaYY2e13lnqHUqQgPtiSyH51nq3tdo8G0YAJdfkSv\n"
	"KvnfslW91fyEBUKnkdW1o3/1UFU/wprZ7ixVL/F42A4xDu7OFE8EnweJOZ0jWceE\n"
	"OdhCkaIGBCfRnlECRK8UyQ==\n"
	"-----END PRIVATE KEY-----\n";

const char th_tv3_pub_pem[] =
	"-----BEGIN PUBLIC KEY-----\n"
	"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAptpm+qvIDCh/9wjU26SQ\n"
	"CK26ogYkBhDrYxnAaw2JbbBsp1oDbHKk+1r381NeBUG2HEFAuU+Fr72u5ot3yKdz\n"
	"oF/FajAzQNKnm569/D3upKoi8mYBaST15Uig8j8qoUW1U217LL0jEHlSnHV3lcaD\n"
	"TXqDpTRR4Bfz9IqOgJgFZ8/oTfEomSrjrLYef81Eyxr7ZIMQXEKKEK7V4UXKS0+/\n"
	"fDsiG/cXidhzt8UbTL9vqXqxM2+IDImyO+FAc/tkBG55LmzxPto1Nq0WbnZzRM/w\n"
	"Tzrd0I/8NlevxtFbphg4evlHjFNI7+GrqR87ViEwuAJJ9Je5QQjct5YJfFRWiZ5C\n"
	"MQIDAQAB\n"
	"-----END PUBLIC KEY-----\n";

const char th_tv5_pub_pem[] =
	"-----BEGIN PUBLIC KEY-----\n"
	"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAwXNI6sdlknHBnK8Fu2U6\n"
	"Cwor9qY747jP8KAfeBMeveEt1TqaHkLfaSD07trZLhGpfs8/AHqjhgSMO1O10YQW\n"
	"OrrJ4hjIWPKqxbgrYMkBQc+mwdiWp4W3ByCqxBRagCveCXRWCmuJYovl9H/bsDI0\n"
	"iGbpVtEOghJtfciisYSgxcLufUDTRkvwxjIBK1pCRjk33jJ5YTBWTHMRtMAOcFLN\n"
	"F6hdEYdX8SPsgHHeLZ5Lv2T/686w1xtgCHef/sd4uSfWmyzsalQdHG/e4IyYmrhx\n"
	"+O3VBoNDzE3nx23bFeV/RVNCG7cV6VhmYokJNHa/erIPkEmEFID6A5wQOXuxUkmJ\n"
	"WwIDAQAB\n"
	"-----END PUBLIC KEY-----\n";

EVP_PKEY *
th_rsa_key(int bits)
{
	EVP_PKEY *k = EVP_RSA_gen((unsigned int)bits);

	if (k == NULL)
		abort();
	return k;
}

char *
th_pem_key(EVP_PKEY *k, int priv)
{
	BIO *b = BIO_new(BIO_s_mem());

	if (b == NULL || (priv ? PEM_write_bio_PrivateKey(b, k, NULL, NULL,
	    0, NULL, NULL) : PEM_write_bio_PUBKEY(b, k)) != 1)
		abort();
	return th_bio_string(b);
}

char *
th_pem_cert(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());

	if (b == NULL || PEM_write_bio_X509(b, x) != 1)
		abort();
	return th_bio_string(b);
}

EVP_PKEY *
th_key_of_pem(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k;

	if (b == NULL ||
	    (k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL)) == NULL)
		abort();
	BIO_free(b);
	return k;
}

char *
th_pem_bare(const char *pem)
{
	const char *p = strchr(pem, '\n') + 1, *end = strstr(pem, "-----END");
	char *s = malloc(strlen(pem) + 1);
	size_t n = 0;

	if (s == NULL)
		abort();
	for (; p < end; p++)
		if (*p != '\n')
			s[n++] = *p;
	s[n] = '\0';
	return s;
}

static void
th_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *e;

	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	if ((e = X509V3_EXT_conf_nid(NULL, &v3, nid, value)) == NULL ||
	    X509_add_ext(x, e, -1) != 1)
		abort();
	X509_EXTENSION_free(e);
}

X509 *
th_cert(const struct th_cert *c)
{
	X509 *x = X509_new(), *is;
	X509_NAME *n = X509_NAME_new();
	BIGNUM *bn = NULL;
	ASN1_INTEGER *ai;
	size_t i;

	if (x == NULL || n == NULL || X509_set_version(x, 2) != 1 ||
	    BN_hex2bn(&bn, c->serial_hex) == 0 ||
	    (ai = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
	    X509_set_serialNumber(x, ai) != 1 ||
	    ASN1_TIME_set(X509_getm_notBefore(x),
	    (time_t)c->not_before) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(x),
	    (time_t)c->not_after) == NULL ||
	    X509_set_pubkey(x, c->key) != 1)
		abort();
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	for (i = 0; c->name[i] != NULL; i += 2)
		if (X509_NAME_add_entry_by_txt(n, c->name[i], MBSTRING_UTF8,
		    (const unsigned char *)c->name[i + 1], -1, -1, 0) != 1)
			abort();
	if (X509_set_subject_name(x, n) != 1 ||
	    X509_set_issuer_name(x, c->issuer != NULL ?
	    X509_get_subject_name(c->issuer) : n) != 1)
		abort();
	X509_NAME_free(n);
	is = c->issuer != NULL ? c->issuer : x;
	if (c->ca) {
		th_ext(x, is, NID_basic_constraints, "critical,CA:TRUE");
		th_ext(x, is, NID_key_usage, c->ca == 2 ?
		    "critical,digitalSignature,keyCertSign,cRLSign" :
		    "critical,keyCertSign,cRLSign");
	} else if (!c->no_ext)
		th_ext(x, is, NID_key_usage,
		    "critical,digitalSignature,nonRepudiation");
	if (X509_sign(x, c->issuer_key != NULL ? c->issuer_key : c->key,
	    EVP_sha256()) == 0)
		abort();
	return x;
}

char *
th_cert_pem(const struct th_cert *c)
{
	X509 *x = th_cert(c);
	char *s = th_pem_cert(x);

	X509_free(x);
	return s;
}

void
th_rsa_sign(EVP_PKEY *key, const char *digest, const void *p, size_t n,
    char *out)
{
	unsigned char sig[1024];
	size_t sig_len = sizeof(sig);
	EVP_MD_CTX *mc = EVP_MD_CTX_new();

	if (mc == NULL || EVP_DigestSignInit(mc, NULL,
	    strcmp(digest, "SHA1") == 0 ? EVP_sha1() : EVP_sha256(), NULL,
	    key) != 1 || EVP_DigestSign(mc, sig, &sig_len, p, n) != 1)
		abort();
	EVP_MD_CTX_free(mc);
	EVP_EncodeBlock((unsigned char *)out, sig, (int)sig_len);
}

int
th_rsa_check(EVP_PKEY *key, const void *p, size_t n, const char *b64)
{
	unsigned char sig[1100];
	size_t len = strlen(b64);
	EVP_MD_CTX *mc;
	int dlen, rc;

	if (len % 4 != 0 || len / 4 * 3 > sizeof(sig))
		return 0;
	/* EVP_DecodeBlock counts the padding in: drop it again. */
	dlen = EVP_DecodeBlock(sig, (const unsigned char *)b64, (int)len);
	if (dlen < 0)
		return 0;
	while (len > 0 && b64[len - 1] == '=') {
		len--;
		dlen--;
	}
	if ((mc = EVP_MD_CTX_new()) == NULL)
		abort();
	rc = EVP_DigestVerifyInit(mc, NULL, EVP_sha256(), NULL, key) == 1 &&
	    EVP_DigestVerify(mc, sig, (size_t)dlen, p, n) == 1;
	EVP_MD_CTX_free(mc);
	return rc;
}

size_t
th_form_encode(const char *p, size_t n, char *out)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '*')
			out[o++] = (char)c;
		else if (c == ' ')
			out[o++] = '+';
		else
			o += (size_t)snprintf(out + o, 4, "%%%02X", c);
	}
	return o;
}

/* Where field k stands in n; n->n when it is not there. */
static size_t
th_note_at(const struct th_note *n, const char *k)
{
	size_t i;

	for (i = 0; i < n->n; i++)
		if (strcmp(n->f[i].k, k) == 0)
			break;
	return i;
}

void
th_note_set_bytes(struct th_note *n, const char *k, const char *v,
    size_t len)
{
	size_t i = th_note_at(n, k);

	if (v == NULL) {
		if (i < n->n) {
			memmove(&n->f[i], &n->f[i + 1],
			    (n->n - i - 1) * sizeof(n->f[0]));
			n->n--;
		}
		return;
	}
	if (i == n->n) {
		if (n->n == sizeof(n->f) / sizeof(n->f[0]) ||
		    len >= sizeof(n->f[0].v))
			abort();
		n->n++;
		n->f[i].raw = 0;
	}
	snprintf(n->f[i].k, sizeof(n->f[i].k), "%s", k);
	memcpy(n->f[i].v, v, len);
	n->f[i].v[len] = '\0';
	n->f[i].len = len;
}

void
th_note_set(struct th_note *n, const char *k, const char *v)
{
	th_note_set_bytes(n, k, v, v != NULL ? strlen(v) : 0);
}

char *
th_vector(const char *rel, size_t *len)
{
	const char *top = getenv("top_srcdir");
	char path[4096];
	char *buf;
	FILE *f;
	long n;

	snprintf(path, sizeof(path), "%s/tests/vectors/%s",
	    top != NULL && top[0] != '\0' ? top : ".", rel);
	if ((f = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "# %s: cannot open (top_srcdir unset?)\n",
		    path);
		abort();
	}
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0 ||
	    (buf = malloc((size_t)n + 1)) == NULL ||
	    fread(buf, 1, (size_t)n, f) != (size_t)n)
		abort();
	fclose(f);
	buf[n] = '\0';
	if (len != NULL)
		*len = (size_t)n;
	return buf;
}

void
th_vector_note(const char *rel, struct th_note *n)
{
	json_error_t err;
	json_t *doc, *fields, *pair;
	char *text;
	size_t i;

	memset(n, 0, sizeof(*n));
	text = th_vector(rel, NULL);
	if ((doc = json_loads(text, 0, &err)) == NULL ||
	    !json_is_array(fields = json_object_get(doc, "fields")))
		abort();
	json_array_foreach(fields, i, pair) {
		const json_t *k = json_array_get(pair, 0);
		const json_t *v = json_array_get(pair, 1);

		if (!json_is_string(k) || !json_is_string(v))
			abort();
		th_note_set_bytes(n, json_string_value(k),
		    json_string_value(v), json_string_length(v));
	}
	json_decref(doc);
	free(text);
}

void
th_note_set_all(struct th_note *n, const char *const *kv)
{
	for (; kv[0] != NULL; kv += 2)
		th_note_set(n, kv[0], kv[1]);
}

void
th_note_fill(struct th_note *n, const char *const *kv)
{
	memset(n, 0, sizeof(*n));
	th_note_set_all(n, kv);
}

const char *
th_note_get(const struct th_note *n, const char *k)
{
	size_t i = th_note_at(n, k);

	return i < n->n ? n->f[i].v : NULL;
}

static int
th_skipped(const char *k, const char *const *skip)
{
	size_t i;

	for (i = 0; skip != NULL && skip[i] != NULL; i++)
		if (strcmp(k, skip[i]) == 0)
			return 1;
	return 0;
}

size_t
th_note_join(const struct th_note *n, const char *const *skip,
    int with_empty, char *out, size_t cap)
{
	size_t idx[48], m = 0, i, j, t, len = 0;

	for (i = 0; i < n->n; i++)
		if (!th_skipped(n->f[i].k, skip) &&
		    (with_empty || n->f[i].len > 0))
			idx[m++] = i;
	for (i = 1; i < m; i++)
		for (j = i; j > 0 && strcmp(n->f[idx[j - 1]].k,
		    n->f[idx[j]].k) > 0; j--) {
			t = idx[j];
			idx[j] = idx[j - 1];
			idx[j - 1] = t;
		}
	for (i = 0; i < m; i++) {
		const struct th_field *f = &n->f[idx[i]];

		if (len + strlen(f->k) + f->len + 3 > cap)
			abort();
		if (i > 0)
			out[len++] = '&';
		memcpy(out + len, f->k, strlen(f->k));
		len += strlen(f->k);
		out[len++] = '=';
		memcpy(out + len, f->v, f->len);
		len += f->len;
	}
	out[len] = '\0';
	return len;
}

size_t
th_note_form(const struct th_note *n, const char *dup, const char *dupval,
    char *out, size_t cap)
{
	size_t len = 0, i;

	for (i = 0; i <= n->n; i++) {
		const char *k = i < n->n ? n->f[i].k : dup;
		const char *v = i < n->n ? n->f[i].v : dupval;
		size_t vlen = i < n->n ? n->f[i].len : 0;

		if (k == NULL)
			break;
		if (i == n->n)
			vlen = strlen(v);
		if (len + 3 * (strlen(k) + vlen) + 3 > cap)
			abort();
		if (i > 0)
			out[len++] = '&';
		len += th_form_encode(k, strlen(k), out + len);
		out[len++] = '=';
		len += th_form_encode(v, vlen, out + len);
	}
	out[len] = '\0';
	return len;
}

void
th_post(struct ph_request *req, const char *ct, const void *body,
    size_t len, int64_t now)
{
	memset(req, 0, sizeof(*req));
	req->method = "POST";
	req->content_type = ct;
	req->body = (const unsigned char *)body;
	req->body_len = len;
	req->now = now;
}

void
th_wx3_headers(struct ph_header *h, const char *ts, const char *nonce,
    const char *sig, const char *serial)
{
	h[0].name = "Wechatpay-Timestamp";
	h[0].value = ts;
	h[1].name = "Wechatpay-Nonce";
	h[1].value = nonce;
	h[2].name = "Wechatpay-Signature";
	h[2].value = sig;
	h[3].name = "Wechatpay-Serial";
	h[3].value = serial;
}

void
th_answer(struct ph_http_response *in, int status, const void *body,
    size_t len, int64_t now)
{
	memset(in, 0, sizeof(*in));
	in->status = status;
	in->body = (const unsigned char *)body;
	in->body_len = len;
	in->now = now;
}

void
th_wx3_answer(struct th_wx3_answer *a, EVP_PKEY *key, const char *serial,
    int status, const char *body, int64_t now)
{
	static const char ts[] = "1700000000", nonce[] = "abc123NONCE";
	char msg[8400];
	int n;

	snprintf(a->body, sizeof(a->body), "%s", body);
	n = snprintf(msg, sizeof(msg), "%s\n%s\n%s\n", ts, nonce, a->body);
	th_rsa_sign(key, "SHA256", msg, (size_t)n, a->sig);
	th_wx3_headers(a->h, ts, nonce, a->sig, serial);
	th_answer(&a->in, status, a->body, strlen(a->body), now);
	a->in.headers = a->h;
	a->in.nheaders = 4;
}

int
th_notify(const struct ph_provider *p, void *ctx, const void *body,
    size_t len, const char *ct, int64_t now, struct ph_event *ev,
    struct ph_diag *diag)
{
	struct ph_request req;
	struct ph_header h = { "Content-Type", ct };

	th_post(&req, ct, body, len, now);
	req.headers = &h;
	req.nheaders = 1;
	diag->msg[0] = '\0';
	return p->parse_notify(ctx, &req, ev, diag);
}

void
th_feed(const struct ph_provider *p, void *ctx, const char *const *lines,
    const char *term, struct th_run *r, struct ph_diag *diag)
{
	struct ph_event ev;
	char buf[2048];
	size_t i;
	int n;

	memset(r, 0, sizeof(*r));
	for (i = 0; lines[i] != NULL; i++) {
		n = snprintf(buf, sizeof(buf), "%s%s", lines[i], term);
		r->st.line++;
		diag->msg[0] = '\0';
		if ((r->rc = p->statement_line(ctx, &r->st, buf, (size_t)n, &ev,
		    diag)) != PH_OK) {
			r->fail_line = r->st.line;
			return;
		}
		if (ev.kind != PH_EV_IGNORED && r->nev < 4)
			r->ev[r->nev++] = ev;
	}
	diag->msg[0] = '\0';
	r->rc = p->statement_line(ctx, &r->st, NULL, 0, &ev, diag);
}

int
th_ack_body_is(const struct ph_response *r, const char *want)
{
	return r->body_len == strlen(want) &&
	    memcmp(r->body, want, r->body_len) == 0;
}

const char *
th_req_header(const struct ph_http_request *req, const char *name)
{
	const char *v = NULL;
	size_t i;

	for (i = 0; i < req->nheaders; i++) {
		if (strcmp(req->headers[i].name, name) != 0)
			continue;
		/* Twice: which copy would the server read? */
		if (v != NULL)
			return NULL;
		v = req->headers[i].value;
	}
	return v;
}

int
th_req_body_is(const struct ph_http_request *r, const char *want)
{
	return r->body_len == strlen(want) &&
	    memcmp(r->body, want, r->body_len) == 0;
}

struct ph_order_ref *
th_order_ref(const char *id, int64_t amount, int64_t created_at)
{
	static struct ph_order_ref o;

	memset(&o, 0, sizeof(o));
	o.order_id = id;
	o.amount = amount;
	o.currency = "CNY";
	o.txn_id = "";
	o.created_at = created_at;
	o.attempt = "";
	return &o;
}

void
th_call_ctx(struct ph_call_ctx *cc, int64_t now, unsigned int first)
{
	size_t i;

	memset(cc, 0, sizeof(*cc));
	cc->now = now;
	for (i = 0; i < sizeof(cc->random); i++)
		cc->random[i] = (unsigned char)(first + i);
}

int
th_profile_new(const struct ph_provider *p, struct th_conf *c, void **ctx,
    struct ph_diag *diag)
{
	diag->msg[0] = '\0';
	return p->profile_new(&c->conf, ctx, diag);
}

int
th_event_empty(const struct ph_event *ev)
{
	static const struct ph_event zero;

	return memcmp(ev, &zero, sizeof(zero)) == 0;
}

int
th_same_fact(const struct ph_event *a, const struct ph_event *b)
{
	return a->kind == b->kind && strcmp(a->dedup_key, b->dedup_key) == 0 &&
	    strcmp(a->order_id, b->order_id) == 0 &&
	    strcmp(a->txn_id, b->txn_id) == 0 && a->amount == b->amount &&
	    strcmp(a->currency, b->currency) == 0;
}

const char **
th_variant(const char *const *lines, size_t k, const char *repl)
{
	static const char *out[64];
	size_t i, n = 0;

	for (i = 0; lines[i] != NULL && n < 63; i++) {
		if (i == k) {
			if (repl != NULL)
				out[n++] = repl;
			continue;
		}
		out[n++] = lines[i];
	}
	out[n] = NULL;
	return out;
}

void
th_conf_init(struct th_conf *c, const struct ph_provider *p,
    const char *profile)
{
	size_t i;

	memset(c, 0, sizeof(*c));
	for (i = 0; p->conf_keys[i].name != NULL; i++) {
		if (i == TH_CONF_MAX)
			abort();
		c->v[i].name = p->conf_keys[i].name;
		c->v[i].str = "";
	}
	c->conf.profile = profile;
	c->conf.values = c->v;
	c->conf.nvalues = i;
}

static struct ph_conf_value *
th_conf_value(struct th_conf *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->conf.nvalues; i++)
		if (strcmp(c->v[i].name, name) == 0)
			return &c->v[i];
	fprintf(stderr, "th_conf: no key %s\n", name);
	abort();
}

void
th_conf_set(struct th_conf *c, const char *name, const char *s)
{
	struct ph_conf_value *v = th_conf_value(c, name);

	v->present = s != NULL;
	v->str = s != NULL ? s : "";
	v->blob.data = (const unsigned char *)s;
	v->blob.len = s != NULL ? strlen(s) : 0;
}

void
th_conf_str(struct th_conf *c, const char *name, const char *str)
{
	struct ph_conf_value *v = th_conf_value(c, name);

	v->present = str != NULL;
	v->str = str != NULL ? str : "";
}

void
th_conf_file(struct th_conf *c, const char *name, const char *data)
{
	struct ph_conf_value *v = th_conf_value(c, name);

	v->present = data != NULL;
	v->str = data != NULL ? "keys/test.pem" : "";
	v->blob.data = (const unsigned char *)data;
	v->blob.len = data != NULL ? strlen(data) : 0;
}

void
th_conf_num(struct th_conf *c, const char *name, long long num)
{
	struct ph_conf_value *v = th_conf_value(c, name);

	v->present = 1;
	v->str = "1";
	v->num = num;
}

void
th_conf_files(struct th_conf *c, const char *name,
    const char *const *data)
{
	th_conf_files_n(c, name, data, SIZE_MAX);
}

void
th_conf_files_n(struct th_conf *c, const char *name,
    const char *const *data, size_t max)
{
	struct ph_conf_value *v = th_conf_value(c, name);
	struct ph_blob *f = c->files[v - c->v];
	size_t n;

	for (n = 0; n < max && data != NULL && data[n] != NULL; n++) {
		if (n == 8)
			abort();
		f[n].data = (const unsigned char *)data[n];
		f[n].len = strlen(data[n]);
	}
	v->present = n > 0;
	v->str = n > 0 ? "certs/test.pem" : "";
	v->files = f;
	v->nfiles = n;
}

void
th_wx2_conf(struct th_conf *c, const struct ph_provider *p,
    const char *profile, const char *appid, const char *mch_id,
    const char *key, const char *sign_type)
{
	th_conf_init(c, p, profile);
	th_conf_str(c, "appid", appid);
	th_conf_str(c, "mch_id", mch_id);
	th_conf_file(c, "api_key_file", key);
	th_conf_str(c, "sign_type", sign_type);
}

void
th_wx3_conf(struct th_conf *c, const struct ph_provider *p,
    const char *profile, const char *appid, const char *mch_id,
    const char *apiv3_key, const char *pub_id, const char *serial)
{
	th_conf_init(c, p, profile);
	th_conf_str(c, "appid", appid);
	th_conf_str(c, "mch_id", mch_id);
	th_conf_str(c, "api_version", "3");
	th_conf_file(c, "apiv3_key_file", apiv3_key);
	th_conf_file(c, "platform_public_key_file", th_tv3_pub_pem);
	th_conf_str(c, "platform_public_key_id", pub_id);
	if (serial != NULL) {
		th_conf_file(c, "merchant_private_key_file", th_tv3_priv_pem);
		th_conf_str(c, "merchant_serial", serial);
	}
}

void
th_scratch_remove(const char *dir)
{
	char cmd[700];

	if (getenv("KEEP_TMP") != NULL)
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		diag("could not remove %s", dir);
}
