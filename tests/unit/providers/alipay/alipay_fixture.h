/*
 * What the Alipay plugin's unit tests share: the keys made when a test
 * runs (Alipay's, the app's, an impostor's), profiles, and answers
 * signed as Alipay signs them.  Nothing here prints TAP; the check of a
 * request both tests make is alipay_check.h.
 */
#ifndef PH_ALIPAY_FIXTURE_H
#define PH_ALIPAY_FIXTURE_H

#include <stddef.h>

#include <openssl/evp.h>

#include <payhook/provider.h>

#define NOW		1796023800LL	/* 2026-11-30 07:30:00 UTC */
#define NOW_BJ		"2026-11-30 15:30:00"
#define PAID_BJ		"2026-11-30 15:29:40"
#define PAID_AT		1796023780LL
#define APP_ID		"2021004123456789"
#define SELLER_ID	"2088102119685838"
#define ORDER		"A20261130-0001"
#define TRADE_NO	"2026113022001403030500012345"

#define QNODE		"alipay_trade_query_response"

/* The keys, made by afx_keys_make (RSA-2048), freed by afx_keys_free;
 * the PEM texts of Alipay's and the impostor's public keys and of the
 * app's private key. */
extern EVP_PKEY *afx_alipay_key, *afx_app_key, *afx_other_key;
extern char *afx_alipay_pub_pem, *afx_app_priv_pem, *afx_other_pub_pem;
void afx_keys_make(void);
void afx_keys_free(void);

/* A profile: its ids and the PEM texts of its key files (NULL: none). */
struct afx_prof {
	const char *app_id, *seller_id, *pub, *priv;
};

/* Makes the profile p into *ctx; d gets the reason of a failure. */
int afx_mkprofile(void **ctx, const struct afx_prof *p, struct ph_diag *d);
/* APP_ID and SELLER_ID with Alipay's public key and the app's key. */
struct afx_prof afx_good_prof(void);
/* The context of afx_good_prof's profile; aborts when it cannot be
 * made (d gets why). */
void *afx_good_ctx(struct ph_diag *d);

/* The text of the last afx_answer_text. */
extern char afx_answer_body[16384];
/* {"<node>":<obj>,"sign":"<RSA2 over obj as written>"}, with the sign
 * made by key (NULL: none) over signed_obj (NULL: obj), into
 * afx_answer_body: its length. */
size_t afx_answer_text(const char *node, const char *obj,
    const char *signed_obj, EVP_PKEY *key);

#endif
