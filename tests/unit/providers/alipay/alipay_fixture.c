/* Shared by the Alipay plugin's unit tests: see alipay_fixture.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../providers/alipay/alipay_test.h"

#include "../../lib/helpers.h"
#include "../../lib/tap.h"
#include "alipay_fixture.h"

EVP_PKEY *afx_alipay_key, *afx_app_key, *afx_other_key;
char *afx_alipay_pub_pem, *afx_app_priv_pem, *afx_other_pub_pem;
char afx_answer_body[16384];

void
afx_keys_make(void)
{
	if ((afx_alipay_key = EVP_RSA_gen(2048)) == NULL ||
	    (afx_app_key = EVP_RSA_gen(2048)) == NULL ||
	    (afx_other_key = EVP_RSA_gen(2048)) == NULL)
		abort();
	afx_alipay_pub_pem = th_pem_key(afx_alipay_key, 0);
	afx_app_priv_pem = th_pem_key(afx_app_key, 1);
	afx_other_pub_pem = th_pem_key(afx_other_key, 0);
}

void
afx_keys_free(void)
{
	EVP_PKEY_free(afx_alipay_key);
	EVP_PKEY_free(afx_app_key);
	EVP_PKEY_free(afx_other_key);
	free(afx_alipay_pub_pem);
	free(afx_app_priv_pem);
	free(afx_other_pub_pem);
}

int
afx_mkprofile(void **ctx, const struct afx_prof *p, struct ph_diag *d)
{
	static struct th_conf c;

	th_conf_init(&c, payhook_provider(), "test");
	th_conf_str(&c, "app_id", p->app_id);
	th_conf_str(&c, "seller_id", p->seller_id);
	th_conf_file(&c, "alipay_public_key_file", p->pub);
	th_conf_file(&c, "app_private_key_file", p->priv);
	return th_profile_new(payhook_provider(), &c, ctx, d);
}

struct afx_prof
afx_good_prof(void)
{
	struct afx_prof p = { APP_ID, SELLER_ID, NULL, NULL };

	p.pub = afx_alipay_pub_pem;
	p.priv = afx_app_priv_pem;
	return p;
}

void *
afx_good_ctx(struct ph_diag *d)
{
	struct afx_prof p = afx_good_prof();
	void *ctx = NULL;

	if (afx_mkprofile(&ctx, &p, d) != PH_OK) {
		diag("profile: %s", d->msg);
		abort();
	}
	return ctx;
}

size_t
afx_answer_text(const char *node, const char *obj, const char *signed_obj,
    EVP_PKEY *key)
{
	char sign[1500];
	const char *s = signed_obj != NULL ? signed_obj : obj;

	if (key == NULL)
		return (size_t)snprintf(afx_answer_body,
		    sizeof(afx_answer_body), "{\"%s\":%s}", node, obj);
	th_rsa_sign(key, "SHA256", s, strlen(s), sign);
	return (size_t)snprintf(afx_answer_body, sizeof(afx_answer_body),
	    "{\"%s\":%s,\"sign\":\"%s\"}", node, obj, sign);
}
