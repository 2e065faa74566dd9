/*
 * Certificate expiry.  Plugins read their certificates for verification;
 * the core reads the same bytes (already loaded with the configuration)
 * only for their dates, with OpenSSL.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "jobs/certs.h"
#include "ops/log.h"
#include "ops/text.h"

/* Ends out (o bytes) before a character cut short. */
static void
certs_utf8_end(char *out, size_t *o)
{
	size_t start = *o, need;
	unsigned char lead;

	while (start > 0 && ((unsigned char)out[start - 1] & 0xc0) == 0x80)
		start--;
	if (start == 0)
		return;
	lead = (unsigned char)out[start - 1];
	need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
	if (*o - (start - 1) < need)
		*o = start - 1;
	out[*o] = '\0';
}

/*
 * The subject as one line, "/C=CN/O=...", its values in UTF-8 as written
 * (a Chinese company's name stays readable in the log and in /metrics);
 * a control character is shown as '?'.  Cut at cap.
 */
static void
certs_subject(const X509_NAME *name, char *out, size_t cap)
{
	const X509_NAME_ENTRY *e;
	const ASN1_OBJECT *obj;
	unsigned char *v;
	char oid[80];
	const char *sn;
	size_t o = 0, k;
	int i, len, n, nid;

	out[0] = '\0';
	for (i = 0; i < X509_NAME_entry_count(name) && o + 1 < cap; i++) {
		e = X509_NAME_get_entry(name, i);
		obj = X509_NAME_ENTRY_get_object(e);
		/* An attribute OpenSSL has no name for: its OID, in digits */
		nid = OBJ_obj2nid(obj);
		if (nid == NID_undef || (sn = OBJ_nid2sn(nid)) == NULL)
			sn = OBJ_obj2txt(oid, sizeof(oid), obj, 1) > 0 ? oid : "?";
		if ((len = ASN1_STRING_to_UTF8(&v,
		    X509_NAME_ENTRY_get_data(e))) < 0) {
			v = NULL;	/* a value it cannot convert: "?" */
			len = 0;
		}
		n = snprintf(out + o, cap - o, "/%s=%s", sn, v == NULL ? "?" :
		    "");
		o = n < 0 || (size_t)n >= cap - o ? cap - 1 : o + (size_t)n;
		for (k = 0; k < (size_t)len && o + 1 < cap; k++)
			out[o++] = v[k] < 0x20 || v[k] == 0x7f ? '?' : (char)v[k];
		out[o] = '\0';
		OPENSSL_free(v);
		if (k < (size_t)len) {	/* cut: the last whole character */
			certs_utf8_end(out, &o);
			break;
		}
	}
}

static void
certs_blob(const char *profile, const char *key, const char *file,
    const struct ph_blob *b, void (*fn)(const struct certs_item *, void *),
    void *arg)
{
	struct certs_item it;
	struct tm tm;
	X509 *x;
	BIO *bio;

	if (b->data == NULL || b->len == 0 ||
	    memmem(b->data, b->len, "-----BEGIN CERTIFICATE-----", 27) == NULL)
		return;
	if ((bio = BIO_new_mem_buf(b->data, (int)b->len)) == NULL)
		return;
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		memset(&it, 0, sizeof(it));
		it.profile = profile;
		it.key = key;
		it.file = file;
		certs_subject(X509_get_subject_name(x), it.subject,
		    sizeof(it.subject));
		if (ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm) == 1)
			it.not_before = (int64_t)timegm(&tm);
		if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1) {
			it.not_after = (int64_t)timegm(&tm);
			fn(&it, arg);
		}
		X509_free(x);
	}
	BIO_free(bio);
}

void
certs_each(const struct conf *c, void (*fn)(const struct certs_item *, void *),
    void *arg)
{
	size_t i, j, k;

	for (i = 0; i < c->nprofiles; i++) {
		const struct conf_profile *pr = &c->profiles[i];

		for (j = 0; j < pr->pconf.nvalues; j++) {
			const struct ph_conf_value *v = &pr->values[j];

			if (!v->present)
				continue;
			certs_blob(pr->name, v->name, v->str, &v->blob, fn,
			    arg);
			for (k = 0; k < v->nfiles; k++)
				certs_blob(pr->name, v->name, v->str,
				    &v->files[k], fn, arg);
		}
		if (pr->client_cert.data != NULL)
			certs_blob(pr->name, "client_cert_file",
			    pr->client_cert_file, &pr->client_cert, fn, arg);
	}
}

struct certs_warn {
	int64_t now;
	int warned;
};

static void
certs_warn_one(const struct certs_item *it, void *arg)
{
	struct certs_warn *w = arg;
	int64_t days = (it->not_after - w->now) / 86400;
	char from[TEXT_TIME_MAX];

	if (it->not_before > w->now) {
		/* Everything signed with it is refused until then. */
		w->warned++;
		text_time(it->not_before, from);
		log_warn("profile %s: %s %s: certificate %s IS NOT VALID YET "
		    "(from %s); what it signs is refused until then",
		    it->profile, it->key, it->file, it->subject, from);
		return;
	}
	if (it->not_after - w->now > (int64_t)CERTS_WARN_DAYS * 86400)
		return;
	w->warned++;
	if (it->not_after <= w->now)
		log_warn("profile %s: %s %s: certificate %s HAS EXPIRED; renew "
		    "it and reload payhook", it->profile, it->key, it->file,
		    it->subject);
	else
		log_warn("profile %s: %s %s: certificate %s expires in %lld "
		    "day(s); renew it before then", it->profile, it->key,
		    it->file, it->subject, (long long)days);
}

void
certs_warn_daily(const struct conf *c, struct store *s, int64_t now)
{
	struct certs_warn w = { now, 0 };
	struct store_txn t;
	struct store_key k;
	char day[32];
	time_t tt = (time_t)now;
	struct tm tm;
	struct store_val v;

	gmtime_r(&tt, &tm);
	strftime(day, sizeof(day), "certwarn.%Y-%m-%d", &tm);
	store_key_init(&k, 0);
	store_key_str(&k, day);
	if (store_begin(s, 1, &t) != PH_OK)
		return;
	if (store_get(&t, STORE_DB_META, &k, &v) == PH_OK) {
		store_abort(&t);
		return;		/* warned today already */
	}
	certs_each(c, certs_warn_one, &w);
	store_put(&t, STORE_DB_META, &k, "1", 1);
	store_commit(&t);
}
