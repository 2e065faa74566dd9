/*
 * The check of a request to Alipay's gateway that the Alipay plugin's
 * unit tests share, one test point a fact.  Its functions are static, as
 * tap.h's counters are: include after tap.h and alipay_fixture.h, once
 * per test program.
 */
#ifndef PH_ALIPAY_CHECK_H
#define PH_ALIPAY_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <payhook/provider.h>

#include "../../lib/helpers.h"
#include "alipay_fixture.h"

/* libcurl's escaping, built here: all but ALPHA DIGIT - . _ ~ as %XX. */
static void __attribute__((unused))
afx_curl_escape_into(char *out, size_t cap, const char *s)
{
	size_t o = strlen(out);

	for (; *s != '\0' && o + 4 < cap; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, 4, "%%%02X", c);
	}
	out[o] = '\0';
}

/*
 * Checks a request against the parameters it must carry, as Alipay's SDKs
 * send them (alipay-sdk-python-all @ 6cba10e, alipay/aop/api/
 * DefaultAlipayClient.py lines 88-91 and 133, util/WebUtils.py lines
 * 117-144; alipay-easysdk payment/common/Client.java lines 127-156): the
 * common parameters in the query string, in order, byte for byte up to
 * "&sign=", then the sign; biz_content alone in the body; the sign
 * verified with the app's public key over every parameter, sorted, built
 * here.
 */
static void __attribute__((unused))
afx_check_request(const struct ph_http_request *rq, const char *method,
    const char *biz, const char *what)
{
	static char want[16384], str[16384], sign[2048], form[16384];
	const char *sp, *end;
	size_t i, o = 0;
	const char *q[][2] = {
		{ "app_id", APP_ID }, { "charset", "utf-8" },
		{ "format", "JSON" }, { "method", method },
		{ "sign_type", "RSA2" }, { "timestamp", NOW_BJ },
		{ "version", "1.0" },
	};
	const char *f[][2] = {
		{ "app_id", APP_ID }, { "biz_content", biz },
		{ "charset", "utf-8" }, { "format", "JSON" },
		{ "method", method }, { "sign_type", "RSA2" },
		{ "timestamp", NOW_BJ }, { "version", "1.0" },
	};

	is_str(rq->method, "POST", "%s: POST", what);
	is_str(rq->content_type,
	    "application/x-www-form-urlencoded;charset=utf-8",
	    "%s: form content type", what);
	snprintf(want, sizeof(want), "/gateway.do?");
	for (i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
		snprintf(want + strlen(want), sizeof(want) - strlen(want),
		    "%s%s=", i > 0 ? "&" : "", q[i][0]);
		afx_curl_escape_into(want, sizeof(want), q[i][1]);
	}
	snprintf(want + strlen(want), sizeof(want) - strlen(want), "&sign=");
	str[0] = '\0';
	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		snprintf(str + strlen(str), sizeof(str) - strlen(str),
		    "%s%s=%s", i > 0 ? "&" : "", f[i][0], f[i][1]);
	ok(strncmp(rq->path, want, strlen(want)) == 0,
	    "%s: the common parameters in the URL, byte for byte up to the "
	    "sign", what);
	if (strncmp(rq->path, want, strlen(want)) != 0)
		diag("got: %s\nwant: %s", rq->path, want);
	snprintf(form, sizeof(form), "biz_content=");
	afx_curl_escape_into(form, sizeof(form), biz);
	ok(rq->body_len == strlen(form) &&
	    memcmp(rq->body, form, rq->body_len) == 0,
	    "%s: the body is biz_content alone", what);
	if (rq->body_len != strlen(form) ||
	    memcmp(rq->body, form, rq->body_len) != 0)
		diag("got: %.*s\nwant: %s", (int)rq->body_len,
		    (const char *)rq->body, form);
	sp = strncmp(rq->path, want, strlen(want)) == 0 ?
	    rq->path + strlen(want) : "";
	end = sp + strlen(sp);
	for (i = 0; sp + i < end && o + 1 < sizeof(sign); i++) {
		if (sp[i] == '%' && sp + i + 2 < end) {
			char hex[3] = { sp[i + 1], sp[i + 2], 0 };

			sign[o++] = (char)strtol(hex, NULL, 16);
			i += 2;
		} else
			sign[o++] = sp[i];
	}
	sign[o] = '\0';
	ok(strchr(sp, '&') == NULL, "%s: sign is last", what);
	ok(strlen(sign) == 344, "%s: a 256-byte sign in base64", what);
	ok(th_rsa_check(afx_app_key, str, strlen(str), sign),
	    "%s: sign verifies with the app's public key over every "
	    "parameter, biz_content too", what);
	/* Its length depends on how many characters of the signature need
	 * percent-encoding (about 500 to 530 bytes): that the whole URL is
	 * there is shown by the sign verifying above; here, that the path
	 * holds more than ABI 1's 512 bytes, which often cut it. */
	ok(sizeof(rq->path) > 512 && strlen(rq->path) > 480 &&
	    strlen(rq->path) < sizeof(rq->path), "%s: the whole URL (%zu "
	    "bytes) fits the request's path (%zu bytes; ABI 1 had 512)", what,
	    strlen(rq->path), sizeof(rq->path));
}

#endif
