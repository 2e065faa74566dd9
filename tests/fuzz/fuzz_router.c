/*
 * The request router, fc_handle(), with a real configuration and a real
 * LMDB store in a scratch folder.  The input is
 *
 *   METHOD \n URI \n AUTH \n CONTENT-TYPE \n BODY
 *
 * AUTH "T" sends the right bearer token, "-" none, anything else as is.
 * METHOD "SIGN" posts BODY, name=value lines, as a WeChat v2 notification
 * to URI signed here with the profile's key (MD5).
 */
#include "conf/conf.h"
#include "web/fc.h"
#include "ops/log.h"
#include "store/store.h"

#include "fuzz.h"
#include "fzcore.h"

static struct web_ctx fz_ctx;

void
fz_init(void)
{
	struct conf_errs *errs;
	struct ph_diag diag;
	char conf[2048], path[512];
	size_t i;

	log_init("fuzz_router", LOG_LVL_ERROR);
	fz_scratch();
	snprintf(conf, sizeof(conf),
	    "[core]\ndb_path = var/payhook.mdb\nmap_size_mb = 64\n"
	    "plugin_dir = %s\napi_token_file = keys/api.token\n"
	    "max_body_bytes = 65536\nlog_level = error\n\n"
	    "[profile.wxshop]\nplugin = wechat\nappid = wx2421b1c4370ec43b\n"
	    "mch_id = 10000100\napi_key_file = keys/wechat.key\n"
	    "sign_type = MD5\n", fz_plugins);
	fz_write("payhook.conf", conf, 0644);
	snprintf(path, sizeof(path), "%s/payhook.conf", fz_dir);
	if ((errs = calloc(1, sizeof(*errs))) == NULL)
		abort();
	if (conf_open(path, &fz_ctx.conf, errs) != 0) {
		for (i = 0; i < errs->n; i++)
			fprintf(stderr, "fuzz_router: %s\n", errs->line[i]);
		abort();
	}
	free(errs);
	memset(&diag, 0, sizeof(diag));
	if (store_open(fz_ctx.conf->db_path, (size_t)64 << 20, 0, &fz_ctx.store,
	    &diag) != PH_OK) {
		fprintf(stderr, "fuzz_router: %s\n", diag.msg);
		abort();
	}
}

void
fz_fini(void)
{
	store_close(fz_ctx.store);
	conf_free(fz_ctx.conf);
	fz_scratch_remove();
}

/* A WeChat v2 body from name=value lines, signed with the MD5 key. */
static void
fz_signed(const uint8_t *data, size_t size, struct ph_buf *body)
{
	static const char *const skip[] = { "sign", NULL };
	unsigned char d[PH_MD5_LEN];
	char hex[2 * PH_MD5_LEN + 1];
	struct ph_kvlist kv;
	struct ph_buf s;

	ph_kvlist_init(&kv, 64);
	fz_fields(data, size, skip, &kv);
	ph_buf_init(&s, 1u << 20);
	ph_canonical_join(&kv, skip, 1, &s);
	ph_buf_puts(&s, "&key=" FZ_WXKEY);
	ph_md5(s.data != NULL ? s.data : "", s.len, d);
	ph_buf_free(&s);
	ph_hex_upper(d, sizeof(d), hex);
	ph_kvlist_add(&kv, "sign", 4, hex, strlen(hex), NULL);
	ph_buf_init(body, 1u << 20);
	ph_xml_write_flat("xml", &kv, body);
	ph_kvlist_free(&kv);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *f[4];
	const uint8_t *p = data;
	size_t left = size, n, rest, i;
	struct web_request req;
	struct web_response resp;
	struct ph_header hdr[2];
	struct ph_buf body;

	for (i = 0; i < 4; i++) {
		const uint8_t *start = p;

		p = fz_split(p, left, '\n', &n, &rest);
		f[i] = fz_strndup(start, n);
		left = rest;
	}
	memset(&req, 0, sizeof(req));
	req.method = f[0];
	req.uri = f[1];
	req.authorization = strcmp(f[2], "-") == 0 ? NULL :
	    strcmp(f[2], "T") == 0 ? "Bearer " FZ_TOKEN : f[2];
	req.content_type = f[3];
	req.body = p;
	req.body_len = left;
	req.body_too_big = left > fz_ctx.conf->max_body_bytes;
	hdr[0].name = "Content-Type";
	hdr[0].value = f[3];
	hdr[1].name = "Content-Length";
	hdr[1].value = "0";
	req.headers = hdr;
	req.nheaders = 2;
	req.now = 1764500000;
	ph_buf_init(&body, 1);
	if (strcmp(f[0], "SIGN") == 0) {
		ph_buf_free(&body);
		fz_signed(p, left, &body);
		req.method = "POST";
		req.body = (const unsigned char *)(body.data != NULL ?
		    body.data : "");
		req.body_len = body.len;
	}
	web_response_init(&resp);
	fc_handle(&fz_ctx, &req, &resp);
	if (resp.status < 100 || resp.status > 599 || resp.body.err)
		abort();
	web_response_free(&resp);
	ph_buf_free(&body);
	for (i = 0; i < 4; i++)
		free(f[i]);
	return 0;
}
