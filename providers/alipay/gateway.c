/*
 * The open platform's gateway (/gateway.do), for every call the plugin
 * makes: a request signed with the app's private key (sign_type included,
 * empty values left out), the common parameters in the URL and
 * biz_content in the form body; an answer is JSON whose response object
 * is signed over its text exactly as it appears in the body.  trade.c and
 * billget.c say what to ask and read what the verified answer means.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <payhook/provider.h>
#include <payhook/sdk.h>

#include "alipay_int.h"

/* ---- Requests ------------------------------------------------------------ */

int
ali_set_str(json_t *o, const char *k, const char *v)
{
	json_t *s = json_string(v);

	return s != NULL && json_object_set_new(o, k, s) == 0 ? 0 : -1;
}

/*
 * A signed request, sent as Alipay's SDKs send it: the common parameters
 * (app_id, charset, format, method, sign_type, timestamp, version, then
 * sign) in the query string of /gateway.do, and biz_content (JSON text of
 * biz, compact, members in order) alone in the form body.  The sign
 * covers every non-empty parameter of both but sign, sorted, k=v&k=v.
 * alipay-sdk-python-all DefaultAlipayClient.py lines 88-91, 122, 133;
 * alipay-sdk-java-all AbstractAlipayClient.getRequestUrl; public threads
 * quote the gateway refusing requests without charset in the URL
 * (tests/vectors/FINDINGS.md section 5).
 */
int
ali_build(const struct ali_ctx *ctx, const char *method, const json_t *biz,
    int64_t now, struct ph_http_request *out, struct ph_diag *diag)
{
	static const char *const skip[] = { "sign", NULL };
	struct ph_kvlist common, all, form;
	struct ph_buf s, sig, path, body;
	char ts[20], *biz_text = NULL;
	size_t i;
	int rc;
	const char *fields[][2] = {
		{ "app_id", ctx->app_id },
		{ "charset", "utf-8" },
		{ "format", "JSON" },
		{ "method", method },
		{ "sign_type", "RSA2" },
		{ "timestamp", ts },
		{ "version", "1.0" },
	};

	memset(out, 0, sizeof(*out));
	if (ctx->app_key == NULL)
		return ph_fail(diag, PH_E_CONFIG, "Alipay calls need "
		    "app_private_key_file in the profile");
	if (ali_time_text(now, ts) != PH_OK)
		return ph_fail(diag, PH_E_INTERNAL, "time out of range");
	if ((biz_text = json_dumps(biz, JSON_COMPACT | JSON_PRESERVE_ORDER)) ==
	    NULL)
		return ph_fail(diag, PH_E_NOMEM, "cannot write biz_content");

	ph_kvlist_init(&common, 16);
	ph_kvlist_init(&all, 16);
	ph_kvlist_init(&form, 1);
	ph_buf_init(&s, PH_HTTP_BODY_MAX);
	ph_buf_init(&sig, 2 * PH_RSA_SIG_MAX);
	ph_buf_init(&path, sizeof(out->path) - 1);
	ph_buf_init(&body, sizeof(out->body));
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if ((rc = ph_kvlist_add(&common, fields[i][0],
		    strlen(fields[i][0]), fields[i][1], strlen(fields[i][1]),
		    diag)) != PH_OK ||
		    (rc = ph_kvlist_add(&all, fields[i][0],
		    strlen(fields[i][0]), fields[i][1], strlen(fields[i][1]),
		    diag)) != PH_OK)
			goto out;
	if ((rc = ph_kvlist_add(&all, "biz_content", 11, biz_text,
	    strlen(biz_text), diag)) != PH_OK ||
	    (rc = ph_kvlist_add(&form, "biz_content", 11, biz_text,
	    strlen(biz_text), diag)) != PH_OK)
		goto out;
	if ((rc = ph_canonical_join(&all, skip, 1, &s)) != PH_OK) {
		ph_fail(diag, rc, "cannot build the sign string");
		goto out;
	}
	if ((rc = ali_sign(ctx, s.data, s.len, &sig, diag)) != PH_OK ||
	    (rc = ph_kvlist_add(&common, "sign", 4, sig.data, sig.len,
	    diag)) != PH_OK)
		goto out;
	ph_buf_puts(&path, ALI_PATH "?");
	if ((rc = ph_form_write(&common, &path)) != PH_OK) {
		ph_fail(diag, rc, "request URL longer than %zu bytes",
		    sizeof(out->path) - 1);
		goto out;
	}
	if ((rc = ph_form_write(&form, &body)) != PH_OK) {
		ph_fail(diag, rc, "request larger than %zu bytes",
		    sizeof(out->body));
		goto out;
	}
	if ((rc = ph_request_set(out, "POST", path.data, ALI_FORM_CT,
	    &body)) != PH_OK)
		ph_fail(diag, rc, "cannot write the request");
out:
	free(biz_text);
	ph_kvlist_free(&common);
	ph_kvlist_free(&all);
	ph_kvlist_free(&form);
	ph_buf_free(&s);
	ph_buf_free(&sig);
	ph_buf_free(&path);
	ph_buf_free(&body);
	return ph_clear_on_fail(rc, out, sizeof(*out));
}

/* ---- Answers ------------------------------------------------------------- */

/*
 * The raw text of a top-level member's value in a JSON document that
 * jansson has already accepted: Alipay signs the response object as the
 * bytes it sent, so they are found, never re-serialised.  A scanner for
 * valid JSON, bounded by len all the same.
 */
static int
ali_is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static size_t
ali_json_ws(const char *s, size_t i, size_t n)
{
	while (i < n && ali_is_space((unsigned char)s[i]))
		i++;
	return i;
}

static int
ali_json_skip_string(const char *s, size_t n, size_t *i)
{
	size_t j = *i + 1;

	while (j < n && s[j] != '"')
		j += s[j] == '\\' ? 2 : 1;
	if (j >= n)
		return -1;
	*i = j + 1;
	return 0;
}

static int
ali_json_skip_value(const char *s, size_t n, size_t *i)
{
	size_t depth = 0, j = *i;

	if (j >= n)
		return -1;
	if (s[j] != '{' && s[j] != '[' && s[j] != '"') {
		/* A number or a literal: up to what ends it. */
		while (j < n && s[j] != ',' && s[j] != '}' && s[j] != ']' &&
		    !ali_is_space((unsigned char)s[j]))
			j++;
		if (j == *i)
			return -1;
		*i = j;
		return 0;
	}
	do {
		if (j >= n)
			return -1;
		if (s[j] == '"') {
			if (ali_json_skip_string(s, n, &j) != 0)
				return -1;
			continue;
		}
		if (s[j] == '{' || s[j] == '[')
			depth++;
		else if (s[j] == '}' || s[j] == ']')
			depth--;
		j++;
	} while (depth > 0);
	*i = j;
	return 0;
}

static int
ali_json_member_raw(const char *s, size_t n, const char *name,
    const char **val, size_t *val_len)
{
	size_t i, ks, ke, vs, nl = strlen(name);
	int found = 0;

	*val = NULL;
	*val_len = 0;
	i = ali_json_ws(s, 0, n);
	if (i >= n || s[i] != '{')
		return -1;
	i = ali_json_ws(s, i + 1, n);
	if (i < n && s[i] == '}')
		return -1;
	for (;;) {
		if (i >= n || s[i] != '"')
			return -1;
		ks = i + 1;
		if (ali_json_skip_string(s, n, &i) != 0)
			return -1;
		ke = i - 1;
		i = ali_json_ws(s, i, n);
		if (i >= n || s[i] != ':')
			return -1;
		i = ali_json_ws(s, i + 1, n);
		vs = i;
		if (ali_json_skip_value(s, n, &i) != 0)
			return -1;
		if (ke - ks == nl && memcmp(s + ks, name, nl) == 0) {
			if (found++)
				return -1;
			*val = s + vs;
			*val_len = i - vs;
		}
		i = ali_json_ws(s, i, n);
		if (i < n && s[i] == ',') {
			i = ali_json_ws(s, i + 1, n);
			continue;
		}
		if (i < n && s[i] == '}')
			break;
		return -1;
	}
	return found == 1 ? 0 : -1;
}

/* What a verified answer of code != 10000 says, for the diagnostic. */
int
ali_provider_error(const json_t *r, const char *what, int verified,
    struct ph_diag *diag)
{
	char c[16], m[96], sc[64], sm[160];

	return ph_fail(diag, PH_E_PROVIDER, "Alipay %s the %s: code %s (%s), "
	    "sub_code %s (%s)%s", verified ? "refused" : "answered",
	    what,
	    ali_diag_text(json_string_value(json_object_get(r, "code")), c,
	    sizeof(c)),
	    ali_diag_text(json_string_value(json_object_get(r, "msg")), m,
	    sizeof(m)),
	    ali_diag_text(json_string_value(json_object_get(r, "sub_code")),
	    sc, sizeof(sc)),
	    ali_diag_text(json_string_value(json_object_get(r, "sub_msg")),
	    sm, sizeof(sm)),
	    verified ? "" : " (unsigned)");
}

/*
 * Parses an answer, finds the response object by its name, verifies the
 * RSA2 sign over its raw text, and returns the object (*root to free).
 * An unsigned answer that reports an error is PH_E_PROVIDER (nothing is
 * believed from it); any other unsigned or badly signed one is refused.
 */
int
ali_open_answer(const struct ali_ctx *ctx, const struct ali_method *m,
    const struct ph_http_response *in, json_t **root, const json_t **resp,
    struct ph_diag *diag)
{
	const char *raw, *sign = NULL, *what = m->method;
	const json_t *r;
	size_t raw_len, sign_len = 0;
	int rc;

	*root = NULL;
	*resp = NULL;
	if (in->status != 200)
		return ph_fail(diag, PH_E_PROVIDER, "Alipay answered %s with "
		    "HTTP %d", what, in->status);
	if ((rc = ph_json_parse(in->body, in->body_len, &ali_json_limits,
	    root, diag)) != PH_OK)
		return rc;
	if ((rc = ph_json_opt_string(*root, "sign", 2 * PH_RSA_SIG_MAX, &sign,
	    &sign_len, diag)) != PH_OK)
		goto fail;
	if ((r = json_object_get(*root, m->node)) == NULL) {
		const json_t *e = json_object_get(*root, "error_response");

		rc = json_is_object(e) ? ali_provider_error(e, what, 0, diag) :
		    ph_fail(diag, PH_E_MALFORMED, "answer without %s",
		    m->node);
		goto fail;
	}
	if (!json_is_object(r)) {
		rc = ph_fail(diag, PH_E_MALFORMED, "%s is not an object",
		    m->node);
		goto fail;
	}
	if (sign == NULL || sign_len == 0) {
		const char *code = json_string_value(json_object_get(r,
		    "code"));

		rc = code != NULL && strcmp(code, "10000") != 0 ?
		    ali_provider_error(r, what, 0, diag) :
		    ph_fail(diag, PH_E_SIGNATURE, "answer is not signed");
		goto fail;
	}
	if (ali_json_member_raw((const char *)in->body, in->body_len, m->node,
	    &raw, &raw_len) != 0) {
		rc = ph_fail(diag, PH_E_MALFORMED, "cannot find the text of %s",
		    m->node);
		goto fail;
	}
	if ((rc = ali_verify(ctx, sign, sign_len, raw, raw_len, diag)) !=
	    PH_OK)
		goto fail;
	*resp = r;
	return PH_OK;
fail:
	json_decref(*root);
	*root = NULL;
	return rc;
}

/* The code and sub_code of an answer, "" for what it lacks. */
const char *
ali_code(const json_t *r, const char **sub)
{
	const char *c = json_string_value(json_object_get(r, "code"));
	const char *s = json_string_value(json_object_get(r, "sub_code"));

	*sub = s != NULL ? s : "";
	return c != NULL ? c : "";
}
