/*
 * The SDK's flat XML reader (WeChat v2 bodies) against libxml2 reading
 * the same shape (xml_oracle.c), and the writer on what it read: whatever
 * parses must write back and parse to the same.
 *
 * Of the documents past the reader's checks on bytes: what the reader
 * takes, libxml2 takes too, with the same fields and values; what libxml2
 * takes, the reader takes too, but for what it refuses on purpose: names
 * outside ASCII (or with a namespace prefix) or over 64 bytes, and a
 * declaration of another version than 1.0 or not as XML 1.0 writes it
 * (libxml2 takes pseudo-attributes without white space between them).
 */
#include <stdlib.h>
#include <string.h>

#include <payhook/sdk.h>

#include "fuzz.h"
#include "xml_oracle.h"

static const struct ph_xml_limits lim = { 65536, 64, 8192 };

/* Refusals of documents libxml2 reads, which the reader makes on
 * purpose (doc/design/security.md §2.1). */
static int
stricter_on_purpose(const char *msg)
{
	return strstr(msg, "a name not of ASCII") != NULL ||
	    strstr(msg, "name longer than 64 bytes") != NULL ||
	    strstr(msg, "XML version is not 1.0") != NULL ||
	    strstr(msg, "XML declaration without space before a "
	    "pseudo-attribute") != NULL;
}

/* The reader's refusals on the bytes, before it reads any markup: the
 * reference is not asked about those documents. */
static int
refused_on_bytes(const char *msg)
{
	static const char *const what[] = { "empty document",
	    "document larger than", "NUL byte in document",
	    "not an XML document", "DOCTYPE or ENTITY declarations", NULL };
	size_t i;

	for (i = 0; what[i] != NULL; i++)
		if (strncmp(msg, what[i], strlen(what[i])) == 0)
			return 1;
	return 0;
}

static void
check_against_oracle(const uint8_t *data, size_t size, const char *root,
    int rc, const struct ph_kvlist *kv, const struct ph_diag *diag)
{
	struct ph_kvlist ref;
	struct ph_diag rdiag;
	int rrc;

	if (rc != PH_OK && refused_on_bytes(diag->msg))
		return;
	memset(&rdiag, 0, sizeof(rdiag));
	rrc = xml_oracle_parse(data, size, root, &lim, &ref, &rdiag);
	if (rc == PH_OK && rrc != PH_OK)
		abort();	/* took what libxml2 refuses */
	if (rc != PH_OK && rrc == PH_OK && !stricter_on_purpose(diag->msg))
		abort();	/* refused what libxml2 takes */
	if (rc == PH_OK)
		fz_check_same_fields(kv, &ref, 1);
	ph_kvlist_free(&ref);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *root = size > 1 && data[0] == '<' && data[1] == 'x' ?
	    "xml" : NULL;
	struct ph_kvlist kv, again;
	struct ph_diag diag;
	struct ph_buf out;
	int rc;

	ph_kvlist_init(&kv, lim.max_fields);
	memset(&diag, 0, sizeof(diag));
	rc = ph_xml_parse_flat(data, size, root, &lim, &kv, &diag);
	check_against_oracle(data, size, root, rc, &kv, &diag);
	if (rc == PH_OK) {
		ph_buf_init(&out, 4 * 65536);
		if (ph_xml_write_flat("xml", &kv, &out) == PH_OK &&
		    !out.err) {
			ph_kvlist_init(&again, lim.max_fields);
			if (ph_xml_parse_flat((const unsigned char *)out.data,
			    out.len, "xml", &lim, &again, &diag) == PH_OK)
				fz_check_same_fields(&kv, &again, 0);
			ph_kvlist_free(&again);
		}
		ph_buf_free(&out);
		ph_buf_init(&out, 65536);
		(void)ph_canonical_join(&kv, NULL, 1, &out);
		ph_buf_free(&out);
	}
	ph_kvlist_free(&kv);
	return 0;
}
